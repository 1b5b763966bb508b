"""Demo data: one organisation with clients, orders and invoices in every status.

Running it again adds nothing twice: clients are matched by email, orders by number and invoices by
external id (`demo-NNNN`).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.auth.models import User
from invoiceflow.auth.security import Passwords
from invoiceflow.clients.models import Client
from invoiceflow.clients.schemas import ClientCreate
from invoiceflow.clients.service import create_client
from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.models import Organization
from invoiceflow.core.schemas import Address
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.schemas import InvoiceCreate, InvoiceLineIn
from invoiceflow.invoices.service import change_status, create_invoice
from invoiceflow.orders.models import Order
from invoiceflow.orders.schemas import OrderCreate, OrderItemIn
from invoiceflow.orders.service import create_order

DEMO_EMAIL = "demo@invoiceflow.local"
DEMO_PASSWORD = "demo-password-123"
DEMO_ORG = "Demo Trading BV"

CLIENTS = [
    (
        "Łódź Logistics Sp. z o.o.",
        "billing@lodz-logistics.example",
        "ul. Piotrkowska 104",
        "90-926",
        "Łódź",
        "PL",
        "PL7251234567",
        "PLN",
        "pl",
    ),
    (
        "Müller & Söhne GmbH",
        "rechnung@mueller-soehne.example",
        "Hauptstraße 12",
        "80331",
        "München",
        "DE",
        "DE123456789",
        "EUR",
        "de",
    ),
    (
        "Ærøskøbing Bryghus ApS",
        "faktura@aeroe-bryghus.example",
        "Vestergade 5",
        "5970",
        "Ærøskøbing",
        "DK",
        "DK12345678",
        "DKK",
        "da",
    ),
    (
        "Brasserie du Parc SRL",
        "compta@brasserie-parc.example",
        "Rue Royale 77",
        "1000",
        "Bruxelles",
        "BE",
        "BE0123456749",
        "EUR",
        "fr",
    ),
    (
        "Acme Widgets Ltd",
        "accounts@acme-widgets.example",
        "1 Market Street",
        "EC1A 1BB",
        "London",
        "GB",
        "GB123456789",
        "GBP",
        "en",
    ),
    (
        "Van Dijk Installaties BV",
        "facturen@vandijk.example",
        "Keizersgracht 200",
        "1016 DX",
        "Amsterdam",
        "NL",
        "NL123456789B01",
        "EUR",
        "nl",
    ),
]

PRODUCTS = [
    ("Consulting — senior engineer (hour)", "HUR", Decimal("125.00")),
    ("Workshop: e-invoicing readiness (day)", "DAY", Decimal("950.00")),
    ("Hosting, monthly plan", "MON", Decimal("49.90")),
    ("Barcode scanner Zebra DS2208", "C62", Decimal("139.99")),
    ("Thermal labels 100x150 mm (roll of 500)", "C62", Decimal("18.45")),
    ("Support contract, premium tier", "ANN", Decimal("1200.00")),
]

STATUS_CYCLE = ["draft", "sent", "paid", "overdue", "cancelled", "paid", "sent", "paid"]


@dataclass
class DemoSummary:
    organization_id: uuid.UUID
    created_clients: int
    created_orders: int
    created_invoices: int
    total_invoices: int


async def _demo_org(session: AsyncSession, passwords: Passwords) -> tuple[Organization, User]:
    user = (await session.execute(select(User).where(User.email == DEMO_EMAIL))).scalar_one_or_none()
    if user is not None:
        org = await session.get(Organization, user.organization_id)
        assert org is not None
        return org, user
    org = Organization(
        id=uuid.uuid4(),
        name=DEMO_ORG,
        legal_name=DEMO_ORG,
        address_line1="Grote Markt 1",
        city="Brussel",
        postal_code="1000",
        country="BE",
        vat_id="BE0897123457",
        company_id="0897123457",
        email="invoices@demo-trading.example",
        iban="BE71096123456769",
        bic="GKCCBEBB",
        electronic_address_scheme="0208",
        electronic_address="0897123457",
        default_currency="EUR",
        payment_terms_days=30,
        payment_terms_text="Payment within 30 days by bank transfer.",
    )
    session.add(org)
    await session.flush()
    user = User(
        id=uuid.uuid4(),
        organization_id=org.id,
        email=DEMO_EMAIL,
        name="Demo Admin",
        password_hash=passwords.hash(DEMO_PASSWORD),
        role="admin",
    )
    session.add(user)
    await session.flush()
    return org, user


async def load_demo_data(session: AsyncSession, passwords: Passwords, *, invoices: int = 100) -> DemoSummary:
    org, user = await _demo_org(session, passwords)
    actor = Actor(org.id, user.id, None, "admin", "127.0.0.1", "invoiceflow demo-data")
    rng = random.Random(20261121)  # noqa: S311 - repeatable demo data, not security

    clients: list[Client] = []
    created_clients = 0
    for name, email, street, postal, city, country, vat, currency, lang in CLIENTS:
        existing = (
            await session.execute(
                select(Client).where(
                    Client.organization_id == org.id, Client.email == email, Client.deleted_at.is_(None)
                )
            )
        ).scalar_one_or_none()
        if existing is None:
            existing = await create_client(
                session,
                actor,
                ClientCreate(
                    name=name,
                    email=email,
                    address=Address(line1=street, postal_code=postal, city=city, country=country),
                    vat_id=vat,
                    currency=currency,
                    language=lang,
                ),
            )
            created_clients += 1
        clients.append(existing)

    created_orders = 0
    for n in range(1, 11):
        number = f"DEMO-ORD-{n:03d}"
        found = await session.execute(
            select(Order.id).where(Order.organization_id == org.id, Order.order_number == number)
        )
        if found.first() is not None:
            continue
        client = clients[n % len(clients)]
        items = [
            OrderItemIn(
                product_name=p[0], quantity=Decimal(rng.randint(1, 10)), unit_price=p[2], vat_rate=Decimal("21")
            )
            for p in rng.sample(PRODUCTS, 2)
        ]
        await create_order(
            session, actor, OrderCreate(client_id=client.id, order_number=number, currency=client.currency, items=items)
        )
        created_orders += 1

    today = utcnow().date()
    created_invoices = 0
    for n in range(1, invoices + 1):
        external_id = f"demo-{n:04d}"
        # Draw every number even when the invoice exists, so reruns generate the same data.
        client = clients[rng.randrange(len(clients))]
        picks = rng.sample(PRODUCTS, rng.randint(1, 4))
        quantities = [Decimal(rng.randint(1, 12)) for _ in picks]
        status = STATUS_CYCLE[n % len(STATUS_CYCLE)]
        age = rng.randint(0, 120)
        found = await session.execute(
            select(Invoice.id).where(Invoice.organization_id == org.id, Invoice.external_id == external_id)
        )
        if found.first() is not None:
            continue
        issue = today - timedelta(days=age)
        if status == "overdue":
            issue = today - timedelta(days=max(age, 45))
        due = issue + timedelta(days=30)
        if status in ("draft", "sent") and due < today:
            issue, due = today - timedelta(days=age % 10), today - timedelta(days=age % 10) + timedelta(days=30)
        invoice = await create_invoice(
            session,
            actor,
            InvoiceCreate(
                client_id=client.id,
                issue_date=issue,
                due_date=due,
                currency=client.currency,
                external_id=external_id,
                buyer_reference=f"PO-{4000 + n}",
                items=[
                    InvoiceLineIn(description=p[0], quantity=q, unit_code=p[1], unit_price=p[2], vat_rate=Decimal("21"))
                    for p, q in zip(picks, quantities, strict=True)
                ],
            ),
            today=issue,
        )
        for step in _path_to(status):
            await change_status(session, actor, invoice.id, step)
        created_invoices += 1

    total = (
        await session.execute(select(func.count()).select_from(Invoice).where(Invoice.organization_id == org.id))
    ).scalar_one()
    return DemoSummary(org.id, created_clients, created_orders, created_invoices, int(total))


def _path_to(status: str) -> list[str]:
    return {
        "draft": [],
        "sent": ["sent"],
        "paid": ["sent", "paid"],
        "overdue": ["sent", "overdue"],
        "cancelled": ["cancelled"],
    }[status]
