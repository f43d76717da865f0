"""The command lines: ``python -m train`` (:mod:`.train`), ``python -m rnn_demo.sample``
(:mod:`.sample`), ``python -m rnn_demo.publish`` (:mod:`.publish`), and the argument types they
share (:mod:`.arguments`). Each parses, reports errors in one line, and calls the library.
"""
