"""Generation: sampling text from a model (:mod:`.sampling`, public path ``rnn_demo.sampling``),
the step that carries the state from character to character (:mod:`.stepper`), and its two
engines: the NumPy reference (:mod:`.reference`) and the compiled arithmetic (:mod:`.kernels`,
numba, with :mod:`.simd`'s vector instructions and :mod:`.layout`'s weight panels), chosen by
:mod:`.engines` (the compiled one once it is ready; numba is optional).
"""
