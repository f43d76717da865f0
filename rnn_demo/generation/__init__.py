"""Generation: sampling text from a model (:mod:`.sampling`, public path ``rnn_demo.sampling``) with
one engine, NumPy, written from the formulas of the three cells (:mod:`.engine`).
"""
