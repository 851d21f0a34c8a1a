"""Tiny runs shared by the view tests, made once per session under pytest's temp folder."""

import pytest

from tests.view import fixtures


@pytest.fixture(scope="session")
def view_runs(tmp_path_factory):
    """Paths of a toy run, a mod-add run, a probe-ablation-style folder and a sweep folder."""
    root = tmp_path_factory.mktemp("view")
    return {
        "toy": fixtures.toy_run(root / "toy.pt"),
        "modadd": fixtures.modadd_run(root / "modadd.pt"),
        "ablation": fixtures.ablation_folder(root / "ablation"),
        "sweep": fixtures.sweep_folder(root),
        "root": root,
    }
