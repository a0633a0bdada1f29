"""deploy/k8s/: the Helm values and PVCs parse, and every name they reference exists in the code:
the code location's module and its ``sweep_job``, the env names ``defs/research/sweep.py``
reads, an executor config that dagster-k8s's ``k8s_job_executor`` schema accepts, volumes and
claims that match, the run-queue tag of ``sweep_job``. Plus ``sweep_executor``'s failure paths.
(No cluster or Helm here: what the chart renders is not checked; see deploy/k8s/README.md.)"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from trading_brain.defs.research import sweep
from trading_brain.errors import ConfigError
from trading_brain.settings import HOME_ENV

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((K8S / "values.yaml").read_text())


@pytest.fixture(scope="module")
def deployment(values: dict[str, Any]) -> dict[str, Any]:
    uds = values["dagster-user-deployments"]
    assert uds["enabled"] and len(uds["deployments"]) == 1
    return uds["deployments"][0]


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in deployment["env"]}


def test_code_location_module_holds_the_sweep_job(deployment: dict[str, Any]) -> None:
    args = deployment["dagsterApiGrpcArgs"]
    assert args[0] == "--module-name"
    defs = importlib.import_module(args[1]).defs
    job = defs.resolve_job_def("sweep_job")
    assert {n.name for n in job.nodes} == {"sweep_plan", "sweep_chunk", "sweep_write"}
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


def test_env_selects_a_valid_k8s_job_executor_config(deployment: dict[str, Any]) -> None:
    from dagster._config import validate_config
    from dagster_k8s import k8s_job_executor

    env = _env(deployment)
    assert set(env) == {HOME_ENV, sweep.EXECUTOR_ENV, sweep.EXECUTOR_CONFIG_ENV}
    assert env[sweep.EXECUTOR_ENV] == "k8s"
    cfg = json.loads(env[sweep.EXECUTOR_CONFIG_ENV])
    checked = validate_config(k8s_job_executor.config_schema.config_type, cfg)
    assert checked.success, checked.errors
    assert cfg["max_concurrent"] >= 2
    built = sweep.sweep_executor(env)
    assert built.name == "k8s_sweep"  # dagster-k8s names its executor "k8s"


def test_volumes_claims_and_dagster_home_agree(values: dict[str, Any],
                                               deployment: dict[str, Any]) -> None:
    claims = {d["metadata"]["name"]: d for d in yaml.safe_load_all((K8S / "pvc.yaml").read_text())}
    vols = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    assert set(vols.values()) == set(claims)
    assert all(c["spec"]["accessModes"] == ["ReadWriteMany"] for c in claims.values())
    mounts = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    assert set(mounts) == set(vols)
    assert mounts["home"] == _env(deployment)[HOME_ENV]
    assert mounts["io-storage"] == values["global"]["dagsterHome"] + "/storage"


def test_launcher_queue_limits_and_no_public_ui(values: dict[str, Any]) -> None:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runMonitoring"]["enabled"] and daemon["runMonitoring"][
        "freeSlotsAfterRunEndSeconds"] > 0  # a dead run must give its warehouse slot back
    conc = values["concurrency"]
    assert conc["pools"] == {"defaultLimit": 1, "granularity": "op"}
    limits = {(t["key"], t.get("value")): t["limit"] for t in conc["runs"]["tagConcurrencyLimits"]}
    (key, value), = [(k, v) for k, v in sweep.sweep_job.tags.items() if k == "kind"]
    assert limits[(key, value)] == 1 and conc["runs"]["maxConcurrentRuns"] >= 1
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert "ingress" not in values
    assert values["generatePostgresqlPasswordSecret"] is False  # the secret is never in git


def test_sweep_executor_choices_and_errors() -> None:
    assert sweep.sweep_executor({}).name == "multi_or_in_process_executor"
    configured = sweep.sweep_executor({sweep.EXECUTOR_CONFIG_ENV: '{"multiprocess": {}}'})
    assert configured.name == "multi_or_in_process_executor_sweep"
    with pytest.raises(ConfigError, match="use one of multiprocess, k8s, celery"):
        sweep.sweep_executor({sweep.EXECUTOR_ENV: "kubernetes"})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        sweep.sweep_executor({sweep.EXECUTOR_ENV: "k8s", sweep.EXECUTOR_CONFIG_ENV: "[1]"})
    if importlib.util.find_spec("dagster_celery") is None:  # not a dependency of the project
        with pytest.raises(ConfigError, match="needs the dagster-celery package"):
            sweep.sweep_executor({sweep.EXECUTOR_ENV: "celery"})
