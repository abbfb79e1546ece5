"""Workflows: the stages below put together into what a user runs.

compare.py      `ragtune compare`: every arm on the same questions, scored, reported, recorded (crash-safe, resumable)
train_arms.py   the adapters a comparison needs (`compare --train`, the demo), trained with the train stage
demo.py         `ragtune demo`: the whole product on the shipped sample handbook, offline
tune.py         `ragtune tune` and `compare --search`: each arm's settings searched on a validation split
search.py       the search of one arm (Optuna grid or TPE, p95 constraint, resume) over the one answer path
search_space.py what may be searched per arm, declared as data
validation_split.py  validation/test split of the questions by document
"""
