"""`python -m ragtune.cli ...`: the ragtune command, for launchers that start a module (torchrun):

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m ragtune.cli finetune --train qa.jsonl --out adapters/ft
"""

from ragtune.cli import main

if __name__ == "__main__":
    main()
