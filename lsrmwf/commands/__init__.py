"""The command lines: ``train.py`` (:mod:`.train`), ``generate_rationales.py`` (:mod:`.generate_rationales`) and
``evaluate.py`` (:mod:`.evaluate`). Each parses its arguments and calls the library; no logic of its own."""
