"""Start the real argilla-server on SQLite with the ``sqlscan`` engine and in-process fakeredis.

Run by the argilla-server virtualenv's python as a script (``python launcher.py``), never
imported by curate: argilla-server pins pydantic 2.9 / fastapi 0.115, curate does not.
It reads one JSON object from stdin (so secrets never appear in ``ps``, in its environment or
in files other than the database, which it creates 0600 under a 0077 umask)::

    {"host": "127.0.0.1", "port": 6900, "home": "/path/data", "username": "argilla",
     "password": "...", "api_key": "...", "reset": true, "workspace": "argilla",
     "log_level": "warning"}

Then it migrates the database (alembic upgrade head), creates the owner user (or, with
``reset``, gives an existing owner this API key and password) and
its workspace, writes ``<home>/server-<port>.json`` (pid, url, whether the owner was created; no
secrets) and serves with uvicorn until SIGTERM / Ctrl-C.

Patches (all local to this process):
- ``tempfile.tempdir`` -> ``<home>/tmp/proc<pid>-*``: every ``import argilla_server`` copies
  its 14 MB UI into a new temp dir and never deletes it; we delete ours at exit and sweep the
  dirs of dead processes at start.
- Redis -> fakeredis; the one job the API enqueues that matters (recomputing record status
  after a distribution change) runs in the server's event loop instead of an rq worker.
- Record webhook events are only built when a webhook is enabled (stock bulk ingest spends
  most of its time building them for nobody).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _private_tempdir(home: Path) -> None:
    root = home / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("proc*-*"):
        pid = stale.name[4:].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    mine = tempfile.mkdtemp(prefix=f"proc{os.getpid()}-", dir=root)
    tempfile.tempdir = mine
    atexit.register(shutil.rmtree, mine, ignore_errors=True)


def _environment(cfg: dict) -> None:
    home = Path(cfg["home"])
    os.environ["ARGILLA_HOME_PATH"] = str(home)
    os.environ.setdefault("ARGILLA_DATABASE_URL", f"sqlite+aiosqlite:///{home / 'argilla.db'}?check_same_thread=False")
    os.environ["ARGILLA_SEARCH_ENGINE"] = "sqlscan"
    os.environ["ARGILLA_ENABLE_TELEMETRY"] = "0"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["ARGILLA_BASE_URL"] = "/"


def _fake_redis() -> None:
    import fakeredis
    import redis

    server = fakeredis.FakeServer()
    redis.from_url = lambda url, **kwargs: fakeredis.FakeRedis(server=server)


def _patch_jobs_and_webhooks() -> None:
    from argilla_server.contexts import datasets as datasets_context
    from argilla_server.contexts import webhooks
    from argilla_server.jobs import dataset_jobs

    tasks: set[asyncio.Task] = set()
    status_job = dataset_jobs.update_dataset_records_status_job

    class _InLoop:
        @staticmethod
        def delay(dataset_id):  # rq's Job.delay -> a task in the running loop
            task = asyncio.get_running_loop().create_task(status_job(dataset_id))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    datasets_context.dataset_jobs = type("dataset_jobs", (), {"update_dataset_records_status_job": _InLoop})

    import argilla_server.contexts.records as records_context
    from argilla_server.bulk import records_bulk
    from argilla_server.contexts import distribution

    for module in (records_bulk, distribution, records_context, datasets_context):
        original = module.notify_record_event_v1

        async def notify(db, event, record, _original=original):
            if not await webhooks.list_enabled_webhooks(db):
                return []
            return await _original(db, event, record)

        module.notify_record_event_v1 = notify


def _migrate() -> None:
    import alembic.config
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic.config.main(argv=["-c", ALEMBIC_CONFIG_FILE, "upgrade", "head"])


async def _ensure_owner(cfg: dict) -> bool:
    """Create the owner (or reset its API key / password to the given ones); True when created."""
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal, async_engine
    from argilla_server.models import User, UserRole, Workspace, WorkspaceUser

    created = False
    async with AsyncSessionLocal() as db:
        workspace = await Workspace.get_by(db, name=cfg["workspace"])
        if workspace is None:
            workspace = await Workspace.create(db, name=cfg["workspace"])
        user = await accounts.get_user_by_username(db, cfg["username"])
        if user is None:
            user = await User.create(
                db,
                first_name=cfg["username"],
                username=cfg["username"],
                role=UserRole.owner,
                password_hash=accounts.hash_password(cfg["password"]),
                api_key=cfg["api_key"],
            )
            created = True
        else:
            if cfg.get("reset"):  # the caller's credentials win over the stored ones
                await user.update(db, api_key=cfg["api_key"], password_hash=accounts.hash_password(cfg["password"]))
        if await WorkspaceUser.get_by(db, workspace_id=workspace.id, user_id=user.id) is None:
            await WorkspaceUser.create(db, workspace_id=workspace.id, user_id=user.id)
    await async_engine.dispose()  # the pool belongs to this loop; uvicorn starts another
    return created


def main() -> None:
    os.umask(0o077)  # the database holds the owner's API key: every file here is the owner's only
    cfg = json.loads(sys.stdin.readline())
    home = Path(cfg["home"]).resolve()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    cfg["home"] = str(home)
    _private_tempdir(home)
    _environment(cfg)
    _fake_redis()
    sys.path.insert(0, str(Path(__file__).parent))
    import sqlscan  # noqa: F401  (registers the engine before the app starts)

    _migrate()
    database = home / "argilla.db"
    if database.is_file():
        database.chmod(0o600)  # created 0644 by curate before the umask above
    created = asyncio.run(_ensure_owner(cfg))
    _patch_jobs_and_webhooks()

    import uvicorn
    from argilla_server import app

    url = f"http://{cfg['host']}:{cfg['port']}"
    state = home / f"server-{cfg['port']}.json"
    state.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "url": url,
                "owner_created": created,
                "username": cfg["username"],
                "workspace": cfg["workspace"],
            }
        )
    )
    atexit.register(lambda: state.unlink(missing_ok=True))
    print(f"argilla-server starting on {url} (data in {home})", flush=True)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; exit normally so atexit runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(app, host=cfg["host"], port=int(cfg["port"]), log_level=cfg.get("log_level", "warning"))


if __name__ == "__main__":
    main()
