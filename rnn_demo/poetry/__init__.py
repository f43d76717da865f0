"""Tang poems: the 平水韵 rhyme book (:mod:`.rhyme`), and the regular forms, acrostics, rhyme and
tones as constraints on generation and as a check (:mod:`.rules`)."""
