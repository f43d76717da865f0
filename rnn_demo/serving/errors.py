"""The errors a user reads: one sentence each, kept as an English template and its fields.

The API answers in English (``str(error)``); the page says the same sentence in its own language
through the translation of the template (:func:`rnn_demo.ui.i18n.error_text`). tests/test_i18n.py
checks that every template raised in the package has a translation with the same fields.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message is one sentence for the user: ``template.format(**fields)``."""

    def __init__(self, template: str, **fields):
        super().__init__(template.format(**fields) if fields else template)
        self.template = template
        self.fields = fields
