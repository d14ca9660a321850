"""Background removal of deleted tenants (accounts/deletion.py). Each task loads by id and is
safe to run twice: a second run of a purge in progress returns at once, a finished one finds
nothing to do."""

from celery import shared_task

from accounts.deletion import account_purge, environment_purge, tenant_deletions_resume


@shared_task(acks_late=True, reject_on_worker_lost=True)
def environment_purge_task(environment_id: int) -> bool:
    return environment_purge(environment_id=environment_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def account_purge_task(account_id: int) -> bool:
    return account_purge(account_id=account_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def tenant_deletions_resume_task() -> int:
    """Beat runs this every 10 minutes: deletions a dead worker left unfinished go on."""
    return tenant_deletions_resume()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def console_sessions_purge_task() -> int:
    """Beat runs this nightly: expired sessions and their rows go (accounts/sessions.py)."""
    from accounts.sessions import console_sessions_purge

    return console_sessions_purge()
