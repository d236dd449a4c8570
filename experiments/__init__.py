"""Quality experiments: each trains and evaluates settings on a finished `tandem run`'s data and its dev
split, to choose a default (docs/experiments.md says which experiment chose which). Not speed benchmarks
(those are in bench/). May import every package except the command line."""
