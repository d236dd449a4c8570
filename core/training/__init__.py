"""Training both stages share: options (`config`), the loop with checkpoints (`loop`), torchrun helpers
(`distributed`) and the losses (`losses/`). Imports only from `core`; inference code never imports it."""
