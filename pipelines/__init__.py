"""Chains the stages: `tandem run` (`runner` + `stages/` + `config`), the Python `Pipeline`, evaluation and
reports (`evaluation/`) and the command line (`cli`, `commands/`). May import every other package."""
