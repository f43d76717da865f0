"""The Hugging Face Hub: push a model, host the demo as a Space, ship a model in ``models/``
(:mod:`.publish`; the command line is ``python -m rnn_demo.publish``).
"""
