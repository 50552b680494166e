"""What the HTTP routers share: one ``Services`` object built by the app's lifespan (``app.state.services``).

Routers stay thin: they parse and authenticate the request, call repositories inside one
``services.sessions.begin()`` transaction, and act (dispatcher, MQTT, notifications) only after it
commits. ``services_of(request)`` is the FastAPI dependency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx
from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import Clock
from maps.model import Site
from orchestrator.api.delivery import CartBoard, ThreadWork
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.notify import OutboxWorker, Provider, provider_from_settings
from orchestrator.security import CodeBook, CodeGuard, PersonalDataCipher
from orchestrator.security.keys import Keys
from orchestrator.security.masking import mask_name, mask_phone
from orchestrator.security.passwords import PasswordHashing
from orchestrator.security.signing import SignatureVerifier
from orchestrator.settings import Settings
from orchestrator.store.domain_repositories import PersonalData


@dataclass
class Services:
    """The app's long-lived parts (one per process)."""

    settings: Settings
    clock: Clock
    sessions: sessionmaker[Session]
    site: Site
    keys: Keys
    cipher: PersonalDataCipher
    personal: PersonalData
    verifier: SignatureVerifier
    codes: CodeBook
    guard: CodeGuard
    passwords: PasswordHashing
    dispatcher: Dispatcher
    rng: random.Random = field(default_factory=random.SystemRandom)
    provider: Provider = field(kw_only=True)
    """Sends SMS and calls (``notify.provider``: log or webhook)."""
    outbox_worker: OutboxWorker = field(kw_only=True)
    """Sends what the outbox holds; run as a task of the app's lifespan (``delivery.start_background``)."""
    http_client: httpx.AsyncClient | None = field(default=None, kw_only=True)
    """The webhook provider's client (``None`` for the log provider); closed when the app stops."""
    carts: CartBoard = field(default_factory=CartBoard, kw_only=True)
    """What carts last reported (heartbeat, compartments) and per-screen locks; in memory."""
    threads: ThreadWork = field(default_factory=ThreadWork, kw_only=True)
    """Runs blocking store work off the loop and lets the app wait for it when stopping."""


def build_services(settings: Settings, clock: Clock, sessions: sessionmaker[Session], site: Site) -> Services:
    """Everything the routers need, from the settings (keys are read or created here)."""
    from orchestrator.security.keys import load_or_create_keys

    security = settings.security
    keys = load_or_create_keys(security)
    cipher = PersonalDataCipher(keys)
    notify = settings.notify
    http_client = httpx.AsyncClient() if notify.provider == "webhook" else None
    provider = provider_from_settings(notify, http_client)
    sqlite = settings.database.url.startswith("sqlite")
    threads = ThreadWork(1 if sqlite else None)  # SQLite: one writer at a time, without busy-waiting
    return Services(
        settings=settings,
        clock=clock,
        sessions=sessions,
        site=site,
        keys=keys,
        cipher=cipher,
        personal=PersonalData(cipher, cipher.hmac_phone, mask_name, mask_phone),
        verifier=SignatureVerifier(security.partners, clock, max_skew_s=security.signature_max_skew_s),
        codes=CodeBook(keys.code_key),
        guard=CodeGuard(
            clock,
            attempts=security.code_attempts,
            window_s=security.code_lockout_window_s,
            daily_limit=security.code_daily_limit,
            plain_misses=security.code_plain_misses,
        ),
        passwords=PasswordHashing(),
        dispatcher=Dispatcher(site),
        provider=provider,
        outbox_worker=OutboxWorker(
            sessions,
            provider,
            cipher,
            clock,
            max_attempts=notify.max_attempts,
            backoff_s=notify.backoff_s,
            blocking=threads,
        ),
        http_client=http_client,
        threads=threads,
    )


def services_of(request: Request) -> Services:
    """FastAPI dependency: the app's ``Services``."""
    services: Services = request.app.state.services
    return services
