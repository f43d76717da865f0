"""Generation: sampling text from a model (:mod:`.sampling`, public path ``rnn_demo.sampling``),
the step that carries the state from character to character (:mod:`.stepper`), and its
compiled arithmetic (:mod:`.kernels`, numba, with :mod:`.simd`'s vector instructions).
"""
