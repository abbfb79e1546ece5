"""A local Ray instance on loopback for the whole session (2 CPUs, no dashboard, no usage stats), started once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    pytest.importorskip("ray")
    from ragtune.distributed.ray_cluster import LOCAL, ray_session

    with ray_session(LOCAL, num_cpus=2) as ray:
        yield ray
