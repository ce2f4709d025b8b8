"""Stage 4: deployments/ rendered from the blueprint, validated offline and strictly, rebuilt
only when what it renders changes; and the signed release package, verified and tampered with."""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.parse
from pathlib import Path

import autocoder_runtime
import pytest
import yaml
from conftest import REPO

from autocoder.deploy.keys import SigningKeyError, decrypt_cosign, encrypt_cosign, load_private_key
from autocoder.deploy.plan import build_plan
from autocoder.deploy.render import GROUPS, k8s_documents
from autocoder.deploy.validate import validate_deployments

SYSTEM = "orders"


def autocoder(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def executed(run: subprocess.CompletedProcess) -> list[str]:
    return [line[3:] for line in run.stdout.splitlines() if line.startswith(".  ")]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/orders built through `deploy` once for the module."""
    project = tmp_path_factory.mktemp("deploy") / SYSTEM
    shutil.copytree(REPO / "examples" / SYSTEM, project, ignore=shutil.ignore_patterns("generated", ".doit*"))
    run = autocoder("build", str(project), "deploy")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return project


def documents(root: Path) -> list[dict]:
    return [d for p in sorted((root / "k8s").rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def test_deployments_rendered_and_validated_clean(project: Path) -> None:
    root = project / "deployments"
    for name in (
        "Dockerfile",
        ".dockerignore",
        "docker-compose.yml",
        "docker-compose.prod.yml",
        "constraints.txt",
    ):
        assert (root / name).is_file(), name
    wheels = sorted(p.name for p in (root / "wheels").glob("*.whl"))
    assert wheels == [
        f"autocoder_runtime-{autocoder_runtime.__version__}-py3-none-any.whl",
        "orders-0.1.0-py3-none-any.whl",
    ]
    assert (root / "k8s" / "overlays" / "development" / "kustomization.yaml").is_file()
    report = json.loads((project / "generated" / "reports" / "deploy-validation.json").read_text())
    assert report["ok"] and report["findings"] == []
    # the base, then the one overlay built (development): every pod checked twice
    assert report["checks"]["pss-restricted"] == 2 * 17 and report["checks"]["kubernetes-validate"] >= 24
    assert json.loads((project / "generated" / "reports" / "hadolint.sarif").read_text())["runs"]
    docs = documents(root)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    } <= kinds
    assert {"NetworkPolicy", "ExternalSecret", "ServiceMonitor", "PrometheusRule"} <= kinds
    assert "Secret" not in kinds and "Deployment" not in kinds and "HorizontalPodAutoscaler" not in kinds
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    assert (
        sts["spec"]["replicas"] == 1 and sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    )
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    assert container["resources"]["limits"] == {"cpu": "250m", "memory": "256Mi"}
    dockerfile = (root / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") == 2 and "USER 10001:10001" in dockerfile and "HEALTHCHECK" in dockerfile
    assert '"orders==0.1.0"' in dockerfile  # no otlp_endpoint, SQLite: no runtime extra
    pins = (root / "constraints.txt").read_text()
    assert "\nopentelemetry-sdk==" in pins and "\npsycopg==" in pins  # every extra's dependencies


def _copy(project: Path, tmp_path: Path) -> Path:
    root = tmp_path / "deployments"
    shutil.copytree(project / "deployments", root)
    return root


def _rules(result) -> set[str]:  # noqa: ANN001
    return {f.rule for f in result.failing}


def test_validators_catch_broken_artifacts(project: Path, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    reports = tmp_path / "reports"
    workload = root / "k8s" / "base" / "workload.yaml"
    (sts,) = list(yaml.safe_load_all(workload.read_text()))
    pod = sts["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/var"}})
    container = pod["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    container["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    container["unknownField"] = 1  # strict schema: not a Container field
    workload.write_text(yaml.safe_dump(sts))
    compose = root / "docker-compose.prod.yml"
    compose.write_text(compose.read_text().replace("read_only: true", "read_only: true\n    bogus_key: 1"))
    (root / "Dockerfile").write_text((root / "Dockerfile").read_text() + "RUN cd /tmp && ls\n")
    (root / "k8s" / "base" / "extra.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    )
    result = validate_deployments(root, reports, {})
    rules = _rules(result)
    assert {"PSS002", "PSS004", "PSS005", "PSS012", "PSS013", "PSS017"} <= rules
    assert {"KV001", "KV003", "CMP001", "DL3003"} <= rules
    sarif = json.loads((reports / "deploy-validation.sarif").read_text())
    assert any(r["ruleId"] == "PSS005" for run in sarif["runs"] for r in run["results"])
    waived = validate_deployments(root, reports, {"DL3003": "cd is needed here for the test"})
    assert "DL3003" not in _rules(waived)
    assert [f.suppressed for f in waived.findings if f.rule == "DL3003"] == ["cd is needed here for the test"]


def test_postgres_with_replicas_scales_out(project: Path, tmp_path: Path) -> None:
    ir = json.loads((project / "generated" / "ir.v1.json").read_text())
    ir["deployment"]["store"] = {
        "backend": "postgres",
        "dsn_secret": {"name": "orders-db", "key": "DSN"},
        "data_dir": None,
    }
    ir["deployment"]["ingress"] = {"host": "orders.example.com", "tls_secret": "orders-tls", "class": "nginx"}
    ir["deployment"]["observability"]["otlp_endpoint"] = "http://otel-collector:4318"
    ir["deployment"]["env"]["GREETING"] = "a $HOME: {x}\n- [y]"  # data, not structure
    for component in ir["components"]:
        component["deployment"]["replicas"] = 3
    plan = build_plan(ir, "0.2.0")
    docs = {d["kind"]: d for items in k8s_documents(plan).values() for d in items}
    assert docs["Deployment"]["spec"]["replicas"] == 3 and "StatefulSet" not in docs
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert docs["Ingress"]["spec"]["tls"][0]["secretName"] == "orders-tls"
    env = {e["name"]: e for e in docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "orders-db", "key": "DSN"}
    assert docs["ConfigMap"]["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    ports = {
        p["port"] for rule in docs["NetworkPolicy"]["spec"].get("egress", []) for p in rule.get("ports", [])
    }
    root = tmp_path / "deployments"
    for render in GROUPS.values():
        for rel, data in render(plan).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    # the image installs the runtime's OTLP exporter (it refuses to start with an endpoint and without it)
    assert '"orders[otlp,postgres]==0.1.0"' in (root / "Dockerfile").read_text()
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    assert compose["services"]["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert "pgdata" in compose["volumes"]
    assert compose["services"]["orders"]["environment"]["GREETING"] == "a $$HOME: {x}\n- [y]"
    assert docs["ConfigMap"]["data"]["GREETING"] == "a $HOME: {x}\n- [y]"
    result = validate_deployments(root, tmp_path / "reports", {})
    assert result.failing == [], result.failing
    assert result.checks["deployment"] == 2  # the base and its one overlay, built
    no_dsn = plan.model_copy(update={"dsn_secret": None})
    (root / "k8s/base/workload.yaml").write_bytes(GROUPS["k8s"](no_dsn)["k8s/base/workload.yaml"])
    assert _rules(validate_deployments(root, tmp_path / "reports", {})) == {"DEP001"}
    policies = [d for d in documents(root) if d["kind"] == "NetworkPolicy"]
    egress = {
        p["port"] for d in policies for rule in d["spec"].get("egress", []) for p in rule.get("ports", [])
    }
    assert {53, 5432, 4318} <= egress and ports <= egress


def test_rendering_is_deterministic_and_a_rebuild_runs_nothing(project: Path) -> None:
    plan = build_plan(json.loads((project / "generated" / "ir.v1.json").read_text()), "0.2.0")
    for render in GROUPS.values():
        assert render(plan) == render(plan)
        for rel, data in render(plan).items():
            assert (project / "deployments" / rel).read_bytes() == data
    again = autocoder("build", str(project), "deploy")
    assert again.returncode == 0 and executed(again) == [], again.stdout


def test_logic_change_does_not_rerender_manifests(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / SYSTEM
    shutil.copytree(project, copy)
    arch = copy / "architecture.yaml"
    arch.write_text(arch.read_text().replace('total >= 100"', 'total >= 101"'))
    run = autocoder("build", str(copy), "deploy")
    assert run.returncode == 0, run.stdout[-2000:]
    ran = executed(run)
    assert "gen:big_orders" in ran and "deploy:wheels" in ran
    # the plan's cut of the IR (generated/ir.deploy.json) keeps its bytes: no plan, no render
    assert not {"deploy:plan", "deploy:docker", "deploy:compose", "deploy:k8s", "deploy:validate"} & set(
        ran
    ), ran
    # the system's wheel is rebuilt; the runtime's wheel and constraints.txt depend on the
    # runtime alone: not rebuilt, the same bytes
    assert "deploy:runtime-wheel" not in ran, ran
    runtime = f"wheels/autocoder_runtime-{autocoder_runtime.__version__}-py3-none-any.whl"
    for rel in (runtime, "constraints.txt"):
        assert (copy / "deployments" / rel).read_bytes() == (project / "deployments" / rel).read_bytes()
    system = f"wheels/{SYSTEM}-0.1.0-py3-none-any.whl"
    assert (copy / "deployments" / system).read_bytes() != (project / "deployments" / system).read_bytes()


def test_system_wheel_is_reproducible_installs_and_imports(project: Path, tmp_path: Path) -> None:
    """The in-process (flit_core) wheel: the same bytes from the same sources whatever their
    mtimes, and pip installs it with the runtime's wheel, offline, into a fresh venv."""
    from autocoder.deploy.wheels import build_system_wheel

    wheels = project / "deployments" / "wheels"
    source = tmp_path / "src"
    shutil.copytree(project / "generated" / "src", source)
    for path in source.rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    again = build_system_wheel(source, tmp_path / "again")
    assert again.read_bytes() == (wheels / again.name).read_bytes()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index"]
        + ["--no-deps", "--find-links", str(wheels), SYSTEM, "autocoder-runtime"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # the runtime's own dependencies (starlette, pydantic, ...) come from this venv, appended
    # after the fresh venv's site-packages: the system and the runtime load from the wheels
    import sysconfig

    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = (
        "import importlib.metadata as m, json, autocoder_runtime, orders.app, orders.components.pricer; "
        "print(json.dumps([orders.app.__file__, autocoder_runtime.__file__, m.requires('orders')]))"
    )
    run = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    app, runtime, requires = json.loads(run.stdout)
    assert app.startswith(site) and runtime.startswith(site), (app, runtime)
    assert f"autocoder-runtime=={autocoder_runtime.__version__}" in requires
    assert f'autocoder-runtime[postgres]=={autocoder_runtime.__version__}; extra == "postgres"' in [
        r.replace(" ;", ";") for r in requires
    ]


def test_cosign_key_format_round_trip(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = encrypt_cosign(key, b"secret")
    assert pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    body = json.loads(base64.b64decode(b"".join(pem.splitlines()[1:-1])))
    assert body["kdf"]["name"] == "scrypt" and body["cipher"]["name"] == "nacl/secretbox"
    assert decrypt_cosign(pem, b"secret", "k").private_numbers() == key.private_numbers()
    with pytest.raises(SigningKeyError, match="wrong password"):
        decrypt_cosign(pem, b"other", "k")
    (tmp_path / "k.key").write_bytes(pem)
    with pytest.raises(SigningKeyError, match="COSIGN_PASSWORD"):
        os.environ.pop("COSIGN_PASSWORD", None)
        load_private_key(tmp_path / "k.key")


def _rewrite_member(tarball: Path, name: str, data: bytes) -> None:
    """Replace one file inside the package (keeping its manifest): a tampered release."""
    source = tarfile.open(tarball)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in source.getmembers():
            content = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith("/" + name):
                content = data
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    tarball.write_bytes(out.getvalue())


def test_sign_and_verify_with_openssl_and_tampering(project: Path, tmp_path: Path) -> None:
    env = {"COSIGN_PASSWORD": "release-pw"}
    keygen = autocoder("keygen", "--output-prefix", str(tmp_path / "release"), env=env)
    assert keygen.returncode == 0, keygen.stderr
    env["AUTOCODER_SIGNING_KEY"] = "release.key"  # relative to where autocoder is run
    sign = autocoder("build", str(project), "sign", env=env, cwd=tmp_path)
    assert sign.returncode == 0, sign.stdout[-2000:] + sign.stderr[-2000:]
    dist = project / "dist"
    tarball = dist / "orders-0.1.0.tar.gz"
    first = tarball.read_bytes()
    assert (dist / "orders-0.1.0.pub").read_bytes() == (tmp_path / "release.pub").read_bytes()
    # cosign's .sig is base64 DER ECDSA over SHA-256: openssl accepts it as is
    (tmp_path / "sig.der").write_bytes(base64.b64decode((dist / "orders-0.1.0.tar.gz.sig").read_bytes()))
    openssl = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(dist / "orders-0.1.0.pub"),
            "-signature",
            str(tmp_path / "sig.der"),
            str(tarball),
        ],
        capture_output=True,
        text=True,
    )
    assert openssl.returncode == 0 and "Verified OK" in openssl.stdout
    statement = json.loads(
        base64.b64decode(json.loads((dist / "orders-0.1.0.intoto.jsonl").read_text())["payload"])
    )
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {s["name"] for s in statement["subject"]}
    assert subjects == {"orders-0.1.0.tar.gz", "orders-0.1.0.cdx.json"}
    uris = {d["uri"] for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert {"file:architecture.yaml", "file:deployment.yaml", "template:deploy/Dockerfile.j2"} <= uris
    assert autocoder("verify", str(tarball)).returncode == 0
    again = autocoder("build", str(project), "sign", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "sign" not in executed(again)  # nothing packaged changed
    (project / "dist" / "orders-0.1.0.tar.gz.sig").unlink()
    again = autocoder("build", str(project), "sign", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "sign" in executed(again)
    assert tarball.read_bytes() == first  # deterministic package

    def tampered(path: Path, data: bytes) -> str:
        saved = path.read_bytes()
        path.write_bytes(data)
        try:
            run = autocoder("verify", str(tarball))
            assert run.returncode == 1
            return run.stderr
        finally:
            path.write_bytes(saved)

    sig = dist / "orders-0.1.0.tar.gz.sig"
    other = base64.b64encode(base64.b64decode(sig.read_bytes())[:-1] + b"\x00")
    assert "signature orders-0.1.0.tar.gz.sig does not match" in tampered(sig, other)
    _rewrite_member(tarball, "deployments/Dockerfile", b"FROM scratch\n")
    out = autocoder("verify", str(tarball)).stderr
    tarball.write_bytes(first)
    assert "changed: deployments/Dockerfile" in out and "does not match" in out
    bom = dist / "orders-0.1.0.cdx.json"
    assert "provenance subject orders-0.1.0.cdx.json: changed" in tampered(bom, bom.read_bytes() + b" ")
    envelope_path = dist / "orders-0.1.0.intoto.jsonl"
    envelope = json.loads(envelope_path.read_text())
    envelope["payload"] = base64.b64encode(json.dumps({**statement, "subject": []}).encode()).decode()
    forged = tampered(envelope_path, json.dumps(envelope).encode())
    assert "envelope's signature does not match" in forged
    wrong = autocoder("keygen", "--output-prefix", str(tmp_path / "other"), env=env)
    assert wrong.returncode == 0
    run = autocoder("verify", str(tarball), "--key", str(tmp_path / "other.pub"))
    assert run.returncode == 1 and "does not match" in run.stderr


def test_image_skips_without_an_engine(project: Path) -> None:
    run = autocoder("build", str(project), "image", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert run.returncode == 0, run.stdout[-2000:]
    said = [line for line in run.stdout.splitlines() if line.startswith("image:")]
    assert said == [
        "image: skipped, no container engine reachable at unix:///nonexistent/docker.sock (start one, or "
        "set DOCKER_HOST); deployments/Dockerfile was still validated by deploy:validate"
    ], run.stdout


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A real HTTP server on a Unix socket speaking the few Docker Engine API calls a build
    makes (version, build, image inspect); it records the build context it receives."""

    daemon_threads = True
    image_id = "0123456789ab" * 5 + "cdef"
    contexts: list[tuple[dict[str, list[str]], list[str]]]


class EngineHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeEngine

    def address_string(self) -> str:  # a Unix socket has no client address
        return "unix"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: bytes, kind: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            for _ in range(100_000):  # bounded: a context of at most 100,000 chunks
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
            raise ValueError("context too long")
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urllib.parse.urlsplit(self.path).path
        if path.endswith("/version"):
            self._answer(json.dumps({"ApiVersion": "1.45", "Version": "27.0.0"}).encode())
        elif path.endswith("/_ping"):
            self._answer(b"OK", "text/plain")
        elif path.endswith(f"/images/{self.server.image_id}/json"):
            self._answer(json.dumps({"Id": f"sha256:{self.server.image_id}", "RepoTags": []}).encode())
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802
        parts = urllib.parse.urlsplit(self.path)
        if not parts.path.endswith("/build"):
            self.send_error(404)
            return
        with tarfile.open(fileobj=io.BytesIO(self._body())) as tar:
            names = sorted(m.name for m in tar.getmembers() if m.isfile())
        self.server.contexts.append((urllib.parse.parse_qs(parts.query), names))
        lines = [
            {"stream": "Step 1/1 : FROM scratch\n"},
            {"stream": f"Successfully built {self.server.image_id}"},
        ]
        self._answer(b"".join(json.dumps(line).encode() + b"\r\n" for line in lines))


def test_image_builds_through_the_sdk_against_an_engine(project: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="engine-", dir="/tmp"))  # a socket path is short
    engine = FakeEngine(str(folder / "docker.sock"), EngineHandler)
    engine.contexts = []
    thread = threading.Thread(target=engine.serve_forever, daemon=True)
    thread.start()
    try:
        run = autocoder("build", str(project), "image", env={"DOCKER_HOST": f"unix://{folder}/docker.sock"})
    finally:
        engine.shutdown()
        engine.server_close()
        shutil.rmtree(folder)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"image: built registry.example.com/acme/orders:0.1.0 (sha256:{FakeEngine.image_id})" in run.stdout
    ((query, names),) = engine.contexts
    assert query["t"] == ["registry.example.com/acme/orders:0.1.0"]
    # .dockerignore let in only the wheels and the constraints (it and the Dockerfile always go)
    assert names == [
        ".dockerignore",
        "Dockerfile",
        "constraints.txt",
        f"wheels/autocoder_runtime-{autocoder_runtime.__version__}-py3-none-any.whl",
        "wheels/orders-0.1.0-py3-none-any.whl",
    ]


# --------------------------------------------------------------------------- environments


ENVIRONMENTS = {
    "staging": {"replicas": 2, "host": "staging.orders.example.com", "env": {"FEATURE_X": "on"}},
    "production": {
        "replicas": 4,
        "resources": {"cpu": "1", "memory": "1Gi"},
        "image_tag": "0.1.0-prod",
        "host": "orders.example.com",
    },
}


def _objects(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_each_environment_gets_an_overlay_that_builds_and_validates(project: Path, tmp_path: Path) -> None:
    """PostgreSQL with one replica in the base, three environments: each overlay, built, is
    the base as that environment runs it (its namespace, replicas with their autoscaler and
    disruption budget, resources, image, host, env) and passes the strict validators; where
    kubectl is installed, `kubectl kustomize` builds exactly the same objects."""
    from autocoder.deploy.overlays import build

    ir = json.loads((project / "generated" / "ir.v1.json").read_text())
    ir["deployment"]["store"] = {"backend": "postgres", "dsn_secret": {"name": "orders-db", "key": "DSN"}}
    ir["deployment"]["ingress"] = {
        "host": "dev.orders.example.com",
        "tls_secret": "orders-tls",
        "class": None,
    }
    ir["deployment"]["environments"] = ENVIRONMENTS
    ir["deployment"]["observability"]["otlp_endpoint"] = "http://otel-collector:4318"
    plan = build_plan(ir, "0.2.0")
    assert [e.name for e in plan.environments] == ["development", "production", "staging"]
    root = tmp_path / "deployments"
    for render in GROUPS.values():
        for rel, data in render(plan).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    result = validate_deployments(root, tmp_path / "reports", {})
    assert result.failing == [], result.failing
    assert result.checks["deployment"] == 4  # the base's Deployment and each overlay's
    base = _objects(build(root / "k8s/base"))
    built = {env: build(root / "k8s/overlays" / env) for env in ("development", "staging", "production")}

    dev = _objects(built["development"])
    assert dev.keys() == base.keys()  # the base, relabelled
    assert dev["Deployment", "orders"]["spec"] == base["Deployment", "orders"]["spec"]
    assert not (root / "k8s/overlays/development/patch-deployment-orders.yaml").exists()

    prod = _objects(built["production"])
    deployment = prod["Deployment", "orders"]
    assert deployment["metadata"]["namespace"] == "orders-production"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/instance"] == "orders-production"
    assert {d["metadata"].get("namespace", d["metadata"]["name"]) for d in prod.values()} == {
        "orders-production"
    }
    assert prod["RoleBinding", "orders"]["subjects"][0]["namespace"] == "orders-production"
    assert deployment["spec"]["replicas"] == 4
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert container["image"] == "registry.example.com/acme/orders:0.1.0-prod"
    assert {e["name"] for e in container["env"]} >= {"DATABASE_URL", "API_KEY"}  # merged, not replaced
    assert prod["HorizontalPodAutoscaler", "orders"]["spec"]["minReplicas"] == 4  # only here
    assert ("PodDisruptionBudget", "orders") in prod and ("PodDisruptionBudget", "orders") not in base
    assert prod["Ingress", "orders"]["spec"]["rules"][0]["host"] == "orders.example.com"
    assert prod["Ingress", "orders"]["spec"]["tls"][0]["hosts"] == ["orders.example.com"]
    config = prod["ConfigMap", "orders-config"]["data"]
    assert config["OTEL_RESOURCE_ATTRIBUTES"] == "service.version=0.1.0,deployment.environment=production"

    staging = _objects(built["staging"])
    assert staging["ConfigMap", "orders-config"]["data"]["FEATURE_X"] == "on"
    assert "FEATURE_X" not in base["ConfigMap", "orders-config"]["data"]
    assert staging["Deployment", "orders"]["spec"]["replicas"] == 2

    if shutil.which("kubectl") is None:
        return  # the comparison with kustomize itself needs kubectl
    for env, objects in built.items():
        run = subprocess.run(
            ["kubectl", "kustomize", str(root / "k8s/overlays" / env)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert _objects([d for d in yaml.safe_load_all(run.stdout) if d]) == _objects(objects), env


def test_environment_mistakes_are_diagnosed() -> None:
    from conftest import codes, compile_data, only, orders_arch, orders_deploy

    deploy = orders_deploy()
    deploy["environments"] = {
        "prod": {
            "replicas": 3,  # SQLite: AC130
            "host": "orders.example.com",  # no ingress: AC131
            "resources": {"cpu": "2", "memory": "256Mi"},  # above policy's 500m: AC122
            "env": {"DB_PASSWORD": "hunter22"},  # AC110
        }
    }
    result = compile_data(orders_arch(), deploy)
    assert {"AC130", "AC131", "AC122", "AC110"} <= set(codes(result))
    (replicas,) = only(result, "AC130")
    assert "environments.prod.replicas" in replicas.format() or "prod" in replicas.format()
    deploy["environments"] = {"prod": {"resources": {"cpu": "500m", "memory": "256Mi"}, "image_tag": "1.0"}}
    assert compile_data(orders_arch(), deploy).ir is not None


# --------------------------------------------------------------------------- checkov
# conftest.py sets AUTOCODER_CHECKOV=off for every build in the tests (checkov costs ~10 s of
# CPU per run); these tests set it back to "" (unset: the environment Autocoder manages).


def test_checkov_runs_by_default_and_an_unsuppressed_finding_fails_the_build(
    project: Path, tmp_path: Path
) -> None:
    """The real checkov, from the environment `autocoder tools install` made (the README's
    first command runs it), in a default build of the example with one of its two checkov
    waivers removed: the build fails naming that rule and only it (so the example is otherwise
    clean; CI's own `autocoder build examples/orders` runs checkov on it with both waivers).
    One scan: each costs ~10 s of CPU, most of it checkov importing itself."""
    from autocoder.deploy import tools

    assert tools.managed_checkov() is not None, tools.missing_checkov_message()
    copy = tmp_path / SYSTEM
    shutil.copytree(project, copy)
    deployment = copy / "deployment.yaml"
    original = deployment.read_text()
    kept = [line for line in original.splitlines(keepends=True) if "rule: CKV_K8S_43" not in line]
    assert len(kept) == len(original.splitlines()) - 1
    deployment.write_text("".join(kept))
    default = {"AUTOCODER_CHECKOV": ""}
    failed = autocoder("build", str(copy), "deploy", env=default)
    assert failed.returncode != 0, failed.stdout[-2000:]
    assert "checkov CKV_K8S_43" in failed.stdout + failed.stderr
    report = json.loads((copy / "generated" / "reports" / "deploy-validation.json").read_text())
    assert report["checks"]["checkov"] > 100 and "checkov" not in report["skipped"]
    failing = {(f["rule"], f["file"]) for f in report["findings"] if f["suppressed"] is None}
    assert failing == {
        ("CKV_K8S_43", "k8s/base/workload.yaml"),
        ("CKV_K8S_43", "k8s/overlays/development (built)"),
    }
    assert {f["rule"] for f in report["findings"] if f["suppressed"]} == {"CKV_K8S_35"}
    sarif_text = (copy / "generated" / "reports" / "checkov.sarif").read_text()
    sarif = json.loads(sarif_text)
    assert {r["ruleId"] for run in sarif["runs"] for r in run["results"]} == {"CKV_K8S_43", "CKV_K8S_35"}
    assert "autocoder-checkov-" not in sarif_text  # its temporary scan folder is not in the report


def test_checkov_missing_fails_in_one_line_and_off_says_skipped(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / SYSTEM
    shutil.copytree(project, copy)
    from autocoder.deploy import tools

    monkeypatch.setenv("AUTOCODER_TOOLS_DIR", str(tmp_path / "tools"))
    (tools.checkov_env() / "bin").mkdir(parents=True)  # an install cut short: it has no marker
    run = autocoder("build", str(copy), "deploy", env={"AUTOCODER_CHECKOV": ""})
    assert run.returncode != 0
    said = [line for line in (run.stdout + run.stderr).splitlines() if "checkov" in line]
    assert said == [
        f"deploy:validate: checkov 3.3.30 is not installed: run `autocoder tools install` (once, with "
        f"network; into {tools.checkov_env()}), "
        "or set AUTOCODER_CHECKOV=off to build without it"
    ], run.stdout[-2000:]
    assert "no findings" not in run.stdout
    assert not (copy / "generated" / "reports" / "checkov.sarif").exists()
    report = json.loads((project / "generated" / "reports" / "deploy-validation.json").read_text())
    assert report["skipped"]["checkov"] == "AUTOCODER_CHECKOV=off" and report["checks"]["checkov"] == 0
    monkeypatch.setenv("AUTOCODER_CHECKOV", str(tmp_path / "nowhere"))
    named = validate_deployments(copy / "deployments", tmp_path / "reports", {})
    assert [(f.rule, f.file) for f in named.failing] == [("CKV000", "AUTOCODER_CHECKOV")]
    assert "nowhere does not exist: unset AUTOCODER_CHECKOV" in named.failing[0].message
