"""The router's offline work: the labelled data, training, and the evaluation metrics.

Nothing here runs in `switchboard serve`; the runtime router (`switchboard.routing`) only reads the artifact
that `train` writes. Rebuild it with `./dev train-router` (docs/router.md).
"""
