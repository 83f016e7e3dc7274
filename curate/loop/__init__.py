"""The active-learning loop: choose what is worth labeling, label it, retrain, evaluate.

`curate.loop.strategies` holds the scores shared by `curate loop` and `curate loop simulate`
(uncertainty, novelty, diversity); `curate.loop.simulate` replays the loop with gold labels.
`curate.loop.iteration.run_iteration` runs one resumable iteration of `curate loop run` (steps in
`curate.loop._steps` and, for generative loops, `curate.loop._steps_generative`; state in
`curate.loop.state`, config in `curate.loop.config`).
"""
