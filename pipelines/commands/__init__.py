"""Sub-commands of `tandem`; each module has `register(subparsers)` and a handler per command."""
