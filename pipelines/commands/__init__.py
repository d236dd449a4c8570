"""Sub-commands of `tandem`: each module has `register(subparsers)` and a thin handler that parses, calls the
library and prints. May import every package."""
