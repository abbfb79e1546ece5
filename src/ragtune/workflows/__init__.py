"""Workflows: the stages below put together into what a user runs.

compare.py      `ragtune compare`: every arm on the same questions, scored, reported, recorded (crash-safe, resumable)
train_arms.py   the adapters a comparison needs (`compare --train`, the demo), trained with the train stage
demo.py         `ragtune demo`: the whole product on the shipped sample handbook, offline
"""
