"""Serving: the zoo of served models (:mod:`.zoo`), request validation and caps
(:mod:`.requests`), a generation's stream of text (:mod:`.streaming`), many streams stepped
together (:mod:`.batching`) in a process of their own (:mod:`.generation_process`, started by
:mod:`.process_start`), and the server's lifecycle (:mod:`.lifecycle`, :mod:`.allocator`).
Nothing here imports gradio.
"""
