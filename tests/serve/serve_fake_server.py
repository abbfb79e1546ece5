"""Run a ragtune server with the hashing embedder and the scripted generator (for kill -9 and load tests).

    python serve_fake_server.py INDEX_DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    import uvicorn
    from serve_helpers import ScriptedGenerator

    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import HashEmbedder, Index
    from ragtune.progress import set_progress
    from ragtune.serve.app import create_app
    from ragtune.serve.auth import KeyStore
    from ragtune.serve.settings import ServeSettings

    set_progress(False)
    index_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    index = Index.open_or_create(index_dir, IndexConfig(embed=EmbedConfig(model="hash")), embedder=HashEmbedder())
    app = create_app(ServeSettings(index=str(index_dir), arms=("rag",), port=port, rate_limit_burst=100000),
                     index=index, generators={"rag": ScriptedGenerator()}, keys=KeyStore({}))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
