"""The invoice PDF, drawn with ReportLab from an `InvoiceDocument`.

Text is set in an embedded TrueType font (DejaVu Sans by default) because the 14 standard PDF fonts
cannot show "Łódź" and are not embedded, which PDF/A (Factur-X) forbids. Numbers, dates and amounts are
formatted by Babel for the document's language. The output is deterministic (same document, same bytes),
which lets a stored PDF be trusted to match its source checksum.

Platypus flows the page (frames, page breaks, keeping the totals together, "Page x of y"), but the
content is made of three small flowables of our own instead of Paragraphs and Tables: `_Text` (plain
lines in a few styles), `_Grid` (a text table with fixed columns that repeats its header over pages) and
`_Columns` (blocks side by side). An invoice needs no markup and no cell spans, and those two general
classes cost three times the drawing itself: parsing every cell's markup, resolving styles cell by cell.
Text is wrapped once, when the column widths are known, and drawn in one text object per block. A
one-page invoice renders about as fast as a script placing every string by hand on a bare canvas
(bench/documents_bench.py compares the two).
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache, partial
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import NumberPattern, format_currency, format_decimal, format_percent
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Spacer,
)

from invoiceflow.core.money import minor_unit
from invoiceflow.documents.model import InvoiceDocument, Party

# Bump when the layout changes: stored PDFs are keyed on (source checksum, TEMPLATE_VERSION).
TEMPLATE_VERSION = "pdf-2"

# Streams are written Flate-compressed only. ReportLab's default also wraps them in ASCII85, a 7-bit
# transport encoding that no PDF reader needs, and it costs ~0.6 ms of a one-page invoice's ~10 ms.
# ReportLab reads this setting process-wide; nothing else in invoiceflow draws PDFs.
rl_config.useA85 = 0

PageSize = Literal["A4", "LETTER"]
_PAGE_SIZES: dict[str, tuple[float, float]] = {"A4": A4, "LETTER": LETTER}

FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
# Debian/Ubuntu (fonts-dejavu-core), Fedora/RHEL, Arch, Alpine, then a locally installed copy.
SYSTEM_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)


class FontNotFoundError(RuntimeError):
    """No embeddable TrueType font was found; the standard PDF fonts are never used instead."""


# --------------------------------------------------------------------------------------------- labels

# One label set per language; every set has the keys of the English one (a test checks).
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "number": "Number",
        "issue_date": "Issue date",
        "due_date": "Due date",
        "buyer_reference": "Your reference",
        "order_reference": "Order",
        "credits_invoice": "Credits invoice",
        "bill_to": "Bill to",
        "ship_to": "Ship to",
        "description": "Description",
        "quantity": "Qty",
        "unit": "Unit",
        "unit_price": "Unit price",
        "vat_rate": "VAT",
        "net_amount": "Amount",
        "amounts_in": "Amounts in {currency}",
        "vat_breakdown": "VAT breakdown",
        "vat_category": "VAT category",
        "taxable_amount": "Taxable amount",
        "vat_amount": "VAT amount",
        "line_total": "Sum of lines",
        "allowance": "Allowance",
        "charge": "Charge",
        "net_total": "Total excl. VAT",
        "vat_total": "VAT",
        "gross_total": "Total incl. VAT",
        "paid": "Paid",
        "amount_due": "Amount due",
        "payment": "Payment",
        "iban": "IBAN",
        "bic": "BIC",
        "payment_reference": "Payment reference",
        "notes": "Notes",
        "page": "Page {page} of {total}",
        "vat_id": "VAT ID",
        "company_id": "Company ID",
        "email": "Email",
        "phone": "Phone",
        "cat_S": "Standard rate",
        "cat_Z": "Zero rated",
        "cat_E": "Exempt from VAT",
        "cat_AE": "Reverse charge",
        "cat_K": "Intra-community supply",
        "cat_G": "Export outside the EU",
        "cat_O": "Not subject to VAT",
    },
    "de": {
        "invoice": "Rechnung",
        "credit_note": "Gutschrift",
        "number": "Nummer",
        "issue_date": "Rechnungsdatum",
        "due_date": "Fällig am",
        "buyer_reference": "Ihre Referenz",
        "order_reference": "Bestellung",
        "credits_invoice": "Korrektur zu Rechnung",
        "bill_to": "Rechnungsadresse",
        "ship_to": "Lieferadresse",
        "description": "Beschreibung",
        "quantity": "Menge",
        "unit": "Einheit",
        "unit_price": "Einzelpreis",
        "vat_rate": "USt.",
        "net_amount": "Betrag",
        "amounts_in": "Beträge in {currency}",
        "vat_breakdown": "Umsatzsteuer",
        "vat_category": "Steuerkategorie",
        "taxable_amount": "Bemessungsgrundlage",
        "vat_amount": "Steuerbetrag",
        "line_total": "Summe der Positionen",
        "allowance": "Nachlass",
        "charge": "Zuschlag",
        "net_total": "Gesamt netto",
        "vat_total": "Umsatzsteuer",
        "gross_total": "Gesamt brutto",
        "paid": "Bezahlt",
        "amount_due": "Zu zahlen",
        "payment": "Zahlung",
        "iban": "IBAN",
        "bic": "BIC",
        "payment_reference": "Verwendungszweck",
        "notes": "Anmerkungen",
        "page": "Seite {page} von {total}",
        "vat_id": "USt-IdNr.",
        "company_id": "Registernummer",
        "email": "E-Mail",
        "phone": "Telefon",
        "cat_S": "Regelsteuersatz",
        "cat_Z": "Nullsatz",
        "cat_E": "Steuerbefreit",
        "cat_AE": "Steuerschuldnerschaft des Leistungsempfängers",
        "cat_K": "Innergemeinschaftliche Lieferung",
        "cat_G": "Ausfuhr außerhalb der EU",
        "cat_O": "Nicht steuerbar",
    },
    "fr": {
        "invoice": "Facture",
        "credit_note": "Avoir",
        "number": "Numéro",
        "issue_date": "Date de facture",
        "due_date": "Date d'échéance",
        "buyer_reference": "Votre référence",
        "order_reference": "Commande",
        "credits_invoice": "Avoir sur la facture",
        "bill_to": "Facturer à",
        "ship_to": "Livrer à",
        "description": "Description",
        "quantity": "Qté",
        "unit": "Unité",
        "unit_price": "Prix unitaire",
        "vat_rate": "TVA",
        "net_amount": "Montant",
        "amounts_in": "Montants en {currency}",
        "vat_breakdown": "Récapitulatif de la TVA",
        "vat_category": "Catégorie de TVA",
        "taxable_amount": "Base imposable",
        "vat_amount": "Montant de TVA",
        "line_total": "Total des lignes",
        "allowance": "Remise",
        "charge": "Frais",
        "net_total": "Total HT",
        "vat_total": "TVA",
        "gross_total": "Total TTC",
        "paid": "Déjà payé",
        "amount_due": "Reste à payer",
        "payment": "Paiement",
        "iban": "IBAN",
        "bic": "BIC",
        "payment_reference": "Référence de paiement",
        "notes": "Remarques",
        "page": "Page {page} sur {total}",
        "vat_id": "N° TVA",
        "company_id": "N° d'entreprise",
        "email": "E-mail",
        "phone": "Téléphone",
        "cat_S": "Taux normal",
        "cat_Z": "Taux zéro",
        "cat_E": "Exonéré de TVA",
        "cat_AE": "Autoliquidation",
        "cat_K": "Livraison intracommunautaire",
        "cat_G": "Exportation hors UE",
        "cat_O": "Non soumis à la TVA",
    },
    "nl": {
        "invoice": "Factuur",
        "credit_note": "Creditnota",
        "number": "Nummer",
        "issue_date": "Factuurdatum",
        "due_date": "Vervaldatum",
        "buyer_reference": "Uw referentie",
        "order_reference": "Bestelling",
        "credits_invoice": "Crediteert factuur",
        "bill_to": "Factuuradres",
        "ship_to": "Leveradres",
        "description": "Omschrijving",
        "quantity": "Aantal",
        "unit": "Eenheid",
        "unit_price": "Eenheidsprijs",
        "vat_rate": "Btw",
        "net_amount": "Bedrag",
        "amounts_in": "Bedragen in {currency}",
        "vat_breakdown": "Btw-specificatie",
        "vat_category": "Btw-categorie",
        "taxable_amount": "Maatstaf van heffing",
        "vat_amount": "Btw-bedrag",
        "line_total": "Totaal regels",
        "allowance": "Korting",
        "charge": "Toeslag",
        "net_total": "Totaal excl. btw",
        "vat_total": "Btw",
        "gross_total": "Totaal incl. btw",
        "paid": "Betaald",
        "amount_due": "Te betalen",
        "payment": "Betaling",
        "iban": "IBAN",
        "bic": "BIC",
        "payment_reference": "Betalingskenmerk",
        "notes": "Opmerkingen",
        "page": "Pagina {page} van {total}",
        "vat_id": "Btw-nummer",
        "company_id": "Ondernemingsnummer",
        "email": "E-mail",
        "phone": "Telefoon",
        "cat_S": "Standaardtarief",
        "cat_Z": "Nultarief",
        "cat_E": "Vrijgesteld van btw",
        "cat_AE": "Btw verlegd",
        "cat_K": "Intracommunautaire levering",
        "cat_G": "Uitvoer buiten de EU",
        "cat_O": "Niet onderworpen aan btw",
    },
    "pl": {
        "invoice": "Faktura",
        "credit_note": "Faktura korygująca",
        "number": "Numer",
        "issue_date": "Data wystawienia",
        "due_date": "Termin płatności",
        "buyer_reference": "Referencja nabywcy",
        "order_reference": "Zamówienie",
        "credits_invoice": "Korekta faktury",
        "bill_to": "Nabywca",
        "ship_to": "Adres dostawy",
        "description": "Opis",
        "quantity": "Ilość",
        "unit": "J.m.",
        "unit_price": "Cena jedn. netto",
        "vat_rate": "VAT",
        "net_amount": "Wartość netto",
        "amounts_in": "Kwoty w {currency}",
        "vat_breakdown": "Zestawienie VAT",
        "vat_category": "Kategoria VAT",
        "taxable_amount": "Podstawa opodatkowania",
        "vat_amount": "Kwota VAT",
        "line_total": "Suma pozycji",
        "allowance": "Rabat",
        "charge": "Opłata",
        "net_total": "Razem netto",
        "vat_total": "VAT",
        "gross_total": "Razem brutto",
        "paid": "Zapłacono",
        "amount_due": "Do zapłaty",
        "payment": "Płatność",
        "iban": "IBAN",
        "bic": "BIC",
        "payment_reference": "Tytuł przelewu",
        "notes": "Uwagi",
        "page": "Strona {page} z {total}",
        "vat_id": "NIP",
        "company_id": "Nr rejestrowy",
        "email": "E-mail",
        "phone": "Telefon",
        "cat_S": "Stawka podstawowa",
        "cat_Z": "Stawka 0%",
        "cat_E": "Zwolnione z VAT",
        "cat_AE": "Odwrotne obciążenie",
        "cat_K": "Wewnątrzwspólnotowa dostawa towarów",
        "cat_G": "Eksport poza UE",
        "cat_O": "Niepodlegające VAT",
    },
    "es": {
        "invoice": "Factura",
        "credit_note": "Factura rectificativa",
        "number": "Número",
        "issue_date": "Fecha de emisión",
        "due_date": "Fecha de vencimiento",
        "buyer_reference": "Su referencia",
        "order_reference": "Pedido",
        "credits_invoice": "Rectifica la factura",
        "bill_to": "Facturar a",
        "ship_to": "Enviar a",
        "description": "Descripción",
        "quantity": "Cant.",
        "unit": "Unidad",
        "unit_price": "Precio unitario",
        "vat_rate": "IVA",
        "net_amount": "Importe",
        "amounts_in": "Importes en {currency}",
        "vat_breakdown": "Desglose del IVA",
        "vat_category": "Categoría de IVA",
        "taxable_amount": "Base imponible",
        "vat_amount": "Cuota de IVA",
        "line_total": "Suma de líneas",
        "allowance": "Descuento",
        "charge": "Recargo",
        "net_total": "Total sin IVA",
        "vat_total": "IVA",
        "gross_total": "Total con IVA",
        "paid": "Pagado",
        "amount_due": "Importe pendiente",
        "payment": "Pago",
        "iban": "IBAN",
        "bic": "BIC",
        "payment_reference": "Referencia de pago",
        "notes": "Notas",
        "page": "Página {page} de {total}",
        "vat_id": "NIF-IVA",
        "company_id": "N.º de registro",
        "email": "Correo electrónico",
        "phone": "Teléfono",
        "cat_S": "Tipo general",
        "cat_Z": "Tipo cero",
        "cat_E": "Exento de IVA",
        "cat_AE": "Inversión del sujeto pasivo",
        "cat_K": "Entrega intracomunitaria",
        "cat_G": "Exportación fuera de la UE",
        "cat_O": "No sujeto a IVA",
    },
    "it": {
        "invoice": "Fattura",
        "credit_note": "Nota di credito",
        "number": "Numero",
        "issue_date": "Data di emissione",
        "due_date": "Data di scadenza",
        "buyer_reference": "Vostro riferimento",
        "order_reference": "Ordine",
        "credits_invoice": "Rettifica della fattura",
        "bill_to": "Fatturare a",
        "ship_to": "Spedire a",
        "description": "Descrizione",
        "quantity": "Qtà",
        "unit": "Unità",
        "unit_price": "Prezzo unitario",
        "vat_rate": "IVA",
        "net_amount": "Importo",
        "amounts_in": "Importi in {currency}",
        "vat_breakdown": "Riepilogo IVA",
        "vat_category": "Categoria IVA",
        "taxable_amount": "Imponibile",
        "vat_amount": "Imposta",
        "line_total": "Totale righe",
        "allowance": "Sconto",
        "charge": "Maggiorazione",
        "net_total": "Totale imponibile",
        "vat_total": "IVA",
        "gross_total": "Totale documento",
        "paid": "Pagato",
        "amount_due": "Importo dovuto",
        "payment": "Pagamento",
        "iban": "IBAN",
        "bic": "BIC",
        "payment_reference": "Causale",
        "notes": "Note",
        "page": "Pagina {page} di {total}",
        "vat_id": "Partita IVA",
        "company_id": "N. registrazione",
        "email": "E-mail",
        "phone": "Telefono",
        "cat_S": "Aliquota ordinaria",
        "cat_Z": "Aliquota zero",
        "cat_E": "Esente IVA",
        "cat_AE": "Inversione contabile",
        "cat_K": "Cessione intracomunitaria",
        "cat_G": "Esportazione fuori UE",
        "cat_O": "Non soggetto a IVA",
    },
}

# UN/ECE recommendation 20 codes that people use on invoices, shown as words; other codes show as they are.
_PIECE = {"en": "pcs", "de": "Stk.", "fr": "pce", "nl": "st.", "pl": "szt.", "es": "ud.", "it": "pz."}
UNIT_NAMES: dict[str, dict[str, str] | str] = {
    "C62": _PIECE,
    "H87": _PIECE,
    "EA": _PIECE,
    "HUR": "h",
    "MIN": "min",
    "DAY": {"en": "day", "de": "Tag", "fr": "jour", "nl": "dag", "pl": "dzień", "es": "día", "it": "giorno"},
    "WEE": {"en": "week", "de": "Woche", "fr": "semaine", "nl": "week", "pl": "tydz.", "es": "semana", "it": "sett."},
    "MON": {"en": "month", "de": "Monat", "fr": "mois", "nl": "maand", "pl": "mies.", "es": "mes", "it": "mese"},
    "ANN": {"en": "year", "de": "Jahr", "fr": "an", "nl": "jaar", "pl": "rok", "es": "año", "it": "anno"},
    "LS": {
        "en": "lump sum",
        "de": "pauschal",
        "fr": "forfait",
        "nl": "forfait",
        "pl": "ryczałt",
        "es": "global",
        "it": "forfait",
    },
    "KGM": "kg",
    "GRM": "g",
    "TNE": "t",
    "MTR": "m",
    "KMT": "km",
    "MTK": "m²",
    "MTQ": "m³",
    "LTR": "l",
    "KWH": "kWh",
}

# Countries whose postal address puts the postcode after the city ("Springfield, IL 62704").
_CITY_FIRST = frozenset({"US", "CA", "AU", "GB", "IE", "NZ"})


def _language(tag: str) -> str:
    return tag.replace("_", "-").split("-", 1)[0].lower()


def labels_for(language: str) -> dict[str, str]:
    """The label set for a language tag ("de-AT" uses German), English when there is none."""
    return LABELS.get(_language(language), LABELS["en"])


@lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


# --------------------------------------------------------------------------------------------- fonts


@dataclass(frozen=True, slots=True)
class _Fonts:
    regular: str
    bold: str


_font_lock = threading.Lock()
_registered: dict[Path, _Fonts] = {}


def _fonts(fonts_dir: Path | None) -> _Fonts:
    """Register the TrueType pair once per process and directory (ReportLab's font registry is global)."""
    directories = (Path(fonts_dir),) if fonts_dir is not None else SYSTEM_FONT_DIRS
    tried: list[str] = []
    for directory in directories:
        regular, bold = (directory / name for name in FONT_FILES)
        if regular.is_file() and bold.is_file():
            key = directory.resolve()
            with _font_lock:
                fonts = _registered.get(key)
                if fonts is None:
                    # Names are derived from the folder, so two folders never overwrite each other's fonts.
                    tag = hashlib.sha256(str(key).encode()).hexdigest()[:8]
                    fonts = _Fonts(f"InvoiceSans-{tag}", f"InvoiceSans-Bold-{tag}")
                    pdfmetrics.registerFont(TTFont(fonts.regular, str(regular)))
                    pdfmetrics.registerFont(TTFont(fonts.bold, str(bold)))
                    pdfmetrics.registerFontFamily(
                        fonts.regular,
                        normal=fonts.regular,
                        bold=fonts.bold,
                        italic=fonts.regular,
                        boldItalic=fonts.bold,
                    )
                    _registered[key] = fonts
            return fonts
        tried += [str(regular), str(bold)]
    raise FontNotFoundError(
        "no TrueType font for invoice PDFs: install fonts-dejavu-core or pass fonts_dir= a folder holding "
        f"{' and '.join(FONT_FILES)}; tried {', '.join(tried)}"
    )


# --------------------------------------------------------------------------------------------- numbers


class _Format:
    """Babel formatting for one document: its locale and its currency's minor unit.

    Each distinct value is formatted once per document (an invoice repeats its rates, quantities and units
    on every line, and Babel's pattern engine is the costliest step of a table cell). Values are keyed by
    their text because equal Decimals can print differently: Decimal("2.50") keeps its zero in a quantity.
    """

    def __init__(self, language: str, currency: str) -> None:
        self.locale = _locale(language)
        self.currency = currency
        self.places = minor_unit(currency)
        self._done: dict[tuple[str, str], str] = {}

    def money(self, value: Decimal) -> str:
        key = ("money", str(value))
        text = self._done.get(key)
        if text is None:
            text = self._done[key] = format_currency(value, self.currency, locale=self.locale)
        return text

    def amount(self, value: Decimal) -> str:
        """An amount without the currency sign, always with the currency's decimals (line table)."""
        key = ("amount", str(value))
        text = self._done.get(key)
        if text is None:
            text = self._done[key] = str(_pattern(self.locale, self.places).apply(value, self.locale))
        return text

    def price(self, value: Decimal) -> str:
        """A unit price: at least the currency's decimals, more when the price has them (0.125)."""
        key = ("price", str(value))
        text = self._done.get(key)
        if text is None:
            exponent = value.as_tuple().exponent
            places = max(self.places, -exponent if isinstance(exponent, int) else 0)
            text = self._done[key] = str(_pattern(self.locale, places).apply(value, self.locale))
        return text

    def number(self, value: Decimal) -> str:
        key = ("number", str(value))
        text = self._done.get(key)
        if text is None:
            text = self._done[key] = format_decimal(value, locale=self.locale, decimal_quantization=False)
        return text

    def percent(self, rate: Decimal) -> str:
        key = ("percent", str(rate))
        text = self._done.get(key)
        if text is None:
            text = format_percent(rate.scaleb(-2), locale=self.locale, decimal_quantization=False)
            self._done[key] = text
        return text

    def date(self, value: date) -> str:
        return format_date(value, "medium", locale=self.locale)


@lru_cache(maxsize=256)
def _pattern(locale: Locale, places: int) -> NumberPattern:
    # The locale's own decimal pattern (grouping, separators) with a fixed number of decimals.
    pattern: NumberPattern = copy.copy(locale.decimal_formats[None])
    pattern.frac_prec = (places, places)
    return pattern


# --------------------------------------------------------------------------------------------- text

_INK = colors.HexColor("#1F2328")
_MUTED = colors.HexColor("#59636E")
_RULE = colors.HexColor("#C9D1D9")
_SHADE = colors.HexColor("#EEF1F4")
_MARGIN = 18 * mm
_FOOTER_SPACE = 10 * mm
_BODY = 9
_SMALL = 7.5
_CELL = 8.5
_PAD = 4
# Notes of up to this many lines sit beside the totals, which keeps a 20-line invoice on one page.
_NOTES_BESIDE_TOTALS = 6


@dataclass(frozen=True, slots=True)
class _Style:
    """One kind of text: a font, its size, the height of a line, a colour."""

    font: str
    size: float
    leading: float
    color: colors.Color


@dataclass(frozen=True, slots=True)
class _Styles:
    body: _Style
    strong: _Style
    small: _Style
    detail: _Style
    heading: _Style
    title: _Style
    cell: _Style
    cell_muted: _Style
    cell_head: _Style
    cell_note: _Style
    total_due: _Style


@lru_cache(maxsize=8)
def _styles(fonts: _Fonts) -> _Styles:
    return _Styles(
        body=_Style(fonts.regular, _BODY, _BODY * 1.3, _INK),
        strong=_Style(fonts.bold, _BODY, _BODY * 1.3, _INK),
        small=_Style(fonts.regular, _SMALL, _SMALL * 1.3, _MUTED),
        detail=_Style(fonts.regular, _SMALL + 0.5, (_SMALL + 0.5) * 1.3, _MUTED),
        heading=_Style(fonts.bold, 10, 13, _INK),
        title=_Style(fonts.bold, 20, 24, _INK),
        cell=_Style(fonts.regular, _CELL, _CELL * 1.25, _INK),
        cell_muted=_Style(fonts.regular, _CELL, _CELL * 1.3, _MUTED),
        cell_head=_Style(fonts.bold, _CELL, _CELL * 1.2, _INK),
        cell_note=_Style(fonts.regular, _SMALL, _SMALL * 1.25, _MUTED),
        total_due=_Style(fonts.bold, 10.5, 13, _INK),
    )


def _width(text: str, style: _Style) -> float:
    return _measure(text, style.font, style.size)


@lru_cache(maxsize=8192)
def _measure(text: str, font: str, size: float) -> float:
    # Amounts, rates and units recur on every line and in every invoice; measuring is a Python loop.
    return float(pdfmetrics.stringWidth(text, font, size))


def _wrap(text: str, style: _Style, width: float) -> list[str]:
    """`text` broken into lines no wider than `width`: between words, and inside a word that is wider than
    a whole line (a long URL must not run into the next column). The text's own line breaks are kept."""
    lines: list[str] = []
    for part in text.splitlines() or [""]:
        part = part.strip()
        if _width(part, style) <= width:
            lines.append(part)
            continue
        space = _width(" ", style)
        current: list[str] = []
        used = 0.0
        for word in part.split():
            size = _width(word, style)
            if size > width:
                if current:
                    lines.append(" ".join(current))
                *whole, word = _break_word(word, style, width)
                lines += whole
                current, used = [word], _width(word, style)
            elif current and used + space + size > width:
                lines.append(" ".join(current))
                current, used = [word], size
            else:
                used += size + (space if current else 0.0)
                current.append(word)
        if current:
            lines.append(" ".join(current))
    return lines


def _break_word(word: str, style: _Style, width: float) -> list[str]:
    pieces: list[str] = []
    start, used = 0, 0.0
    for index, char in enumerate(word):
        size = _width(char, style)
        if used + size > width and index > start:
            pieces.append(word[start:index])
            start, used = index, 0.0
        used += size
    pieces.append(word[start:])
    return pieces


# A cell or a block of text: lines, each in its style.
_Lines = tuple[tuple[str, _Style], ...]


def _lines_of(text: str, style: _Style, width: float) -> _Lines:
    return tuple((line, style) for line in _wrap(text, style, width))


def _height(lines: _Lines) -> float:
    return sum(style.leading for _, style in lines)


class _Pen:
    """Writes lines of text into one PDF text object, changing font and colour only when the style does.

    A text object per string (what `drawString` makes) costs about twice as much per cell; a page of
    invoice lines is a few hundred strings.
    """

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.text = canvas.beginText()
        self.style: _Style | None = None

    def write(self, lines: _Lines, *, left: float, right: float, top: float, align: str) -> None:
        """The first baseline sits one font size below `top`, as a Paragraph or a Table cell sets it."""
        text = self.text
        y = top
        for line, style in lines:
            if line:
                if style is not self.style:
                    text.setFont(style.font, style.size, style.leading)
                    text.setFillColor(style.color)
                    self.style = style
                x = left if align == "L" else right - _width(line, style)
                text.setTextOrigin(x, y - style.size)
                text.textOut(line)
            y -= style.leading

    def finish(self) -> None:
        self.canvas.drawText(self.text)


class _Text(Flowable):  # type: ignore[misc]  # ReportLab is untyped
    """Plain text in one or more styles (one style per line), wrapped to the width the layout gives it.

    It does for the invoice's text what a Paragraph would, without parsing markup. It splits between lines
    when it runs onto the next page.
    """

    def __init__(self, items: Sequence[tuple[str, _Style]], *, align: Literal["L", "R"] = "L") -> None:
        super().__init__()
        self.items = tuple(items)
        self.align = align
        self.lines: _Lines = ()
        self._wrapped_at = -1.0

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        if avail_width != self._wrapped_at:
            self.lines = tuple(line for text, style in self.items for line in _lines_of(text, style, avail_width))
            self._wrapped_at = avail_width
        self.width = avail_width
        self.height = _height(self.lines)
        return self.width, self.height

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        self.wrap(avail_width, avail_height)
        used, fit = 0.0, 0
        for _, style in self.lines:
            if used + style.leading > avail_height:
                break
            used += style.leading
            fit += 1
        if fit == 0:
            return []
        if fit == len(self.lines):
            return [self]
        return [_Text(self.lines[:fit], align=self.align), _Text(self.lines[fit:], align=self.align)]

    def draw(self) -> None:
        pen = _Pen(self.canv)
        pen.write(self.lines, left=0.0, right=self.width, top=self.height, align=self.align)
        pen.finish()


@dataclass(frozen=True, slots=True)
class _Rule:
    width: float
    color: colors.Color


_HEAVY = _Rule(0.8, _INK)
_THIN = _Rule(0.3, _RULE)


@dataclass(frozen=True, slots=True)
class _Row:
    """A row of a `_Grid`: its cells' lines (already wrapped to their columns), padding and decoration."""

    cells: tuple[_Lines, ...]
    top: float = 2.0
    bottom: float = 2.0
    background: colors.Color | None = None
    rule_above: _Rule | None = None
    rule_below: _Rule | None = None

    @property
    def height(self) -> float:
        return self.top + max(_height(cell) for cell in self.cells) + self.bottom


class _Grid(Flowable):  # type: ignore[misc]  # ReportLab is untyped
    """A table of plain text with fixed column widths: what the invoice's tables need and no more.

    Cells hold lines wrapped beforehand, so measuring a row is adding line heights. The grid splits between
    rows onto the next page and repeats its `header` rows there; a row taller than a whole page (an
    absurdly long description) is split between its lines. All text goes into one text object.
    """

    def __init__(
        self,
        widths: Sequence[float],
        align: str,
        rows: Sequence[_Row],
        *,
        header: int = 0,
        pad: float = _PAD,
        page_height: float | None = None,
        h_align: str = "LEFT",
        heights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.align = align  # "L" or "R" per column
        self.rows = tuple(rows)
        self.header = header
        self.pad = pad
        self.page_height = page_height
        self.hAlign = h_align
        self.width = float(sum(self.widths))
        self.heights = list(heights) if heights is not None else [row.height for row in self.rows]
        self.height = sum(self.heights)

    def _with(self, body: Sequence[_Row], heights: Sequence[float]) -> _Grid:
        """A grid with these body rows under this grid's header rows."""
        head = self.header
        return _Grid(
            self.widths,
            self.align,
            [*self.rows[:head], *body],
            header=head,
            pad=self.pad,
            page_height=self.page_height,
            h_align=self.hAlign,
            heights=[*self.heights[:head], *heights],
        )

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        head_height = sum(self.heights[: self.header])
        body, heights = self.rows[self.header :], self.heights[self.header :]
        used, fit = 0.0, 0
        for height in heights:
            if used + height > avail_height - head_height:
                break
            used += height
            fit += 1
        if fit == len(body):
            return [self]
        if heights[fit] > (self.page_height or 0.0) - head_height:
            # No page holds this row: it fills the rest of this one and goes on over the next.
            first, rest = _split_row(body[fit], avail_height - head_height - used)
            if first is not None:
                return [
                    self._with([*body[:fit], first], [*heights[:fit], first.height]),
                    self._with([rest, *body[fit + 1 :]], [rest.height, *heights[fit + 1 :]]),
                ]
        if fit == 0:
            return []  # the row moves to the next page whole
        return [self._with(body[:fit], heights[:fit]), self._with(body[fit:], heights[fit:])]

    def draw(self) -> None:
        canvas = self.canv
        tops: list[float] = []
        y = self.height
        for height in self.heights:
            tops.append(y)
            y -= height
        for row, top, height in zip(self.rows, tops, self.heights, strict=True):
            if row.background is not None:
                canvas.setFillColor(row.background)
                canvas.rect(0, top - height, self.width, height, stroke=0, fill=1)
        rules: dict[_Rule, list[tuple[float, float, float, float]]] = {}
        for row, top, height in zip(self.rows, tops, self.heights, strict=True):
            if row.rule_above is not None:
                rules.setdefault(row.rule_above, []).append((0, top, self.width, top))
            if row.rule_below is not None:
                rules.setdefault(row.rule_below, []).append((0, top - height, self.width, top - height))
        for rule, segments in rules.items():
            canvas.setStrokeColor(rule.color)
            canvas.setLineWidth(rule.width)
            canvas.lines(segments)
        pen = _Pen(canvas)
        pad = self.pad
        for row, top in zip(self.rows, tops, strict=True):
            x = 0.0
            for cell, width, align in zip(row.cells, self.widths, self.align, strict=True):
                pen.write(cell, left=x + pad, right=x + width - pad, top=top - row.top, align=align)
                x += width
        pen.finish()


def _split_row(row: _Row, room: float) -> tuple[_Row | None, _Row]:
    """A row too tall for any page, cut between lines: what fits in `room`, and the rest."""
    space = room - row.top - row.bottom
    firsts: list[_Lines] = []
    rests: list[_Lines] = []
    for cell in row.cells:
        used, fit = 0.0, 0
        for _, style in cell:
            if used + style.leading > space:
                break
            used += style.leading
            fit += 1
        firsts.append(cell[:fit])
        rests.append(cell[fit:])
    if not any(firsts):
        return None, row
    first = _Row(tuple(firsts), top=row.top, bottom=row.bottom, background=row.background, rule_above=row.rule_above)
    rest = _Row(tuple(rests), top=row.top, bottom=row.bottom, background=row.background, rule_below=row.rule_below)
    return first, rest


class _Columns(Flowable):  # type: ignore[misc]  # ReportLab is untyped
    """Flowables side by side, each column stacked from the top; boxed columns get a ruled frame."""

    def __init__(
        self,
        columns: Sequence[tuple[float, Sequence[Flowable]]],
        *,
        boxed: Sequence[int] = (),
        box_pad: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        super().__init__()
        self.columns = [(width, list(flowables)) for width, flowables in columns]
        self.boxed = frozenset(boxed)
        self.box_pad = box_pad  # top, sides, bottom
        self.width = float(sum(width for width, _ in self.columns))
        self.height = 0.0
        self._sizes: list[list[tuple[float, float]]] = []

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        top, side, bottom = self.box_pad
        self._sizes = []
        height = 0.0
        for index, (width, flowables) in enumerate(self.columns):
            inner = width - 2 * side if index in self.boxed else width
            sizes = [flowable.wrap(inner, 1e6) for flowable in flowables]
            self._sizes.append(sizes)
            extra = top + bottom if index in self.boxed else 0.0
            height = max(height, sum(h for _, h in sizes) + extra)
        self.height = height
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        top, side, _ = self.box_pad
        x = 0.0
        for index, ((width, flowables), sizes) in enumerate(zip(self.columns, self._sizes, strict=True)):
            boxed = index in self.boxed
            if boxed and flowables:
                canvas.setStrokeColor(_RULE)
                canvas.setLineWidth(0.6)
                canvas.rect(x, 0, width, self.height, stroke=1, fill=0)
            inner_left = x + side if boxed else x
            inner = width - 2 * side if boxed else width
            y = self.height - (top if boxed else 0.0)
            for flowable, (w, h) in zip(flowables, sizes, strict=True):
                y -= h
                left = inner_left + inner - w if getattr(flowable, "hAlign", "LEFT") == "RIGHT" else inner_left
                flowable.drawOn(canvas, left, y)
            x += width


# --------------------------------------------------------------------------------------------- layout


class _Renderer:
    def __init__(self, doc: InvoiceDocument, fonts: _Fonts, width: float, page_height: float) -> None:
        self.doc = doc
        self.fonts = fonts
        self.width = width
        self.page_height = page_height
        self.fmt = _Format(doc.language, doc.currency)
        self.labels = labels_for(doc.language)
        self.styles = _styles(fonts)
        self.language = _language(doc.language)

    def story(self) -> list[Flowable]:
        doc, styles = self.doc, self.styles
        story: list[Flowable] = [self._header(), Spacer(0, 4 * mm), self._addresses(), Spacer(0, 5 * mm)]
        story.append(_Text([(self.labels["amounts_in"].format(currency=doc.currency), styles.small)], align="R"))
        story.append(Spacer(0, 1))
        story.append(self._lines())
        # The VAT breakdown, the totals and how to pay stay together, on the last page of the item table.
        closing: list[Flowable] = [Spacer(0, 4 * mm)]
        if doc.allowances_charges:
            closing += [self._allowances_charges(), Spacer(0, 3 * mm)]
        closing += [*self._vat_breakdown(), Spacer(0, 4 * mm)]
        totals = self._totals()
        side_width = self.width - totals.width - 8 * mm
        left = self._payment(side_width)
        notes = self._notes()
        # Short notes sit under the payment details, beside the totals; long ones follow in full width and
        # may run onto the next page.
        if notes and len(_wrap(doc.notes or "", styles.body, side_width)) <= _NOTES_BESIDE_TOTALS:
            left += [Spacer(0, 3 * mm), *notes] if left else notes
            notes = []
        closing.append(
            _Columns([(side_width, left), (self.width - side_width - totals.width, []), (totals.width, [totals])])
        )
        story.append(KeepTogether(closing))
        if notes:
            story += [Spacer(0, 4 * mm), *notes]
        return story

    def _notes(self) -> list[Flowable]:
        if not self.doc.notes:
            return []
        heading = _Text([(self.labels["notes"], self.styles.heading)])
        heading.keepWithNext = 1
        return [heading, Spacer(0, 2), _Text([(self.doc.notes, self.styles.body)])]

    # -- header: seller on the left, title and references on the right

    def _header(self) -> _Columns:
        doc, labels, fmt, styles = self.doc, self.labels, self.fmt, self.styles
        right_width = self.width * 0.42
        left_width = self.width - right_width - 6 * mm
        left: list[Flowable] = []
        if doc.logo:
            left += [_logo(doc.logo, max_width=55 * mm, max_height=22 * mm), Spacer(0, 3 * mm)]
        left.append(_Text(self._party(doc.seller, details=True, width=left_width)))
        meta: list[tuple[str, str]] = [(labels["number"], doc.number), (labels["issue_date"], fmt.date(doc.issue_date))]
        if doc.due_date is not None:
            meta.append((labels["due_date"], fmt.date(doc.due_date)))
        if doc.buyer_reference:
            meta.append((labels["buyer_reference"], doc.buyer_reference))
        if doc.order_reference:
            meta.append((labels["order_reference"], doc.order_reference))
        if doc.kind == "credit_note" and doc.preceding_invoice_number:
            meta.append((labels["credits_invoice"], doc.preceding_invoice_number))
        label_width = max(_width(k, styles.cell_muted) for k, _ in meta) + 3 * mm
        value_width = right_width - label_width
        meta_grid = _Grid(
            [label_width, value_width],
            "LR",
            [
                _Row((_lines_of(k, styles.cell_muted, label_width), _lines_of(v, styles.cell, value_width)), 0, 1)
                for k, v in meta
            ],
            pad=0,
        )
        kind = labels["credit_note" if doc.kind == "credit_note" else "invoice"]
        title = _Text([(kind, styles.title)], align="R")
        return _Columns(
            [
                (left_width, left),
                (self.width - left_width - right_width, []),
                (right_width, [title, Spacer(0, 2 * mm), meta_grid]),
            ]
        )

    def _party(self, party: Party, *, details: bool, width: float) -> list[tuple[str, _Style]]:
        labels, styles = self.labels, self.styles
        items = [(party.name, styles.strong)]
        if party.legal_name and party.legal_name != party.name:
            items.append((party.legal_name, styles.body))
        items += [(line, styles.body) for line in (party.line1, party.line2) if line]
        items += [(line, styles.body) for line in self._place(party)]
        if party.country:
            items.append((self.fmt.locale.territories.get(party.country, party.country), styles.body))
        ids: list[str] = []
        if party.vat_id:
            ids.append(f"{labels['vat_id']}: {party.vat_id}")
        if party.company_id:
            ids.append(f"{labels['company_id']}: {party.company_id}")
        contact: list[str] = []
        if details and party.email:
            contact.append(f"{labels['email']}: {party.email}")
        if details and party.phone:
            contact.append(f"{labels['phone']}: {party.phone}")
        for group in (ids, contact):
            # Pairs share a line when it holds them both, and take a line each otherwise.
            joined = "  ·  ".join(group)
            if group and _width(joined, styles.detail) <= width:
                items.append((joined, styles.detail))
            else:
                items += [(text, styles.detail) for text in group]
        return items

    @staticmethod
    def _place(party: Party) -> list[str]:
        city, postal, region = party.city or "", party.postal_code or "", party.region or ""
        if party.country in _CITY_FIRST:
            line = " ".join(
                part for part in (f"{city}," if city and (region or postal) else city, region, postal) if part
            )
            return [line] if line else []
        line = " ".join(part for part in (postal, city) if part)
        return [line for line in (line, region) if line]

    def _addresses(self) -> _Columns:
        doc, styles = self.doc, self.styles
        gap = 6 * mm
        box = (self.width - gap) / 2
        inner = box - 6 * mm

        def block(label: str, party: Party) -> list[Flowable]:
            return [_Text([(label.upper(), styles.small), *self._party(party, details=False, width=inner)])]

        bill = block(self.labels["bill_to"], doc.buyer)
        ship = block(self.labels["ship_to"], doc.ship_to) if doc.ship_to else []
        return _Columns(
            [(box, bill), (gap, []), (box, ship)],
            boxed=(0, 2) if doc.ship_to else (0,),
            box_pad=(2.5 * mm, 3 * mm, 2 * mm),
        )

    # -- the item table

    def _lines(self) -> _Grid:
        doc, fmt, labels, styles = self.doc, self.fmt, self.labels, self.styles
        # Columns: #, description, quantity, unit, unit price, VAT %, net amount.
        cells = [
            (
                str(line.position),
                fmt.number(line.quantity),
                self._unit(line.unit_code),
                fmt.price(line.unit_price),
                fmt.percent(line.vat_rate),
                fmt.amount(line.net_amount),
            )
            for line in doc.lines
        ]
        heads = [labels[k] for k in ("description", "quantity", "unit", "unit_price", "vat_rate", "net_amount")]
        heads.insert(0, "#")
        others = [heads[0], *heads[2:]]
        columns = [[row[i] for row in cells] for i in range(len(others))]
        # Headings on one line while the description keeps most of the page; wrapped headings otherwise.
        whole = True
        widths = [self._column_width(head, values, whole=True) for head, values in zip(others, columns, strict=True)]
        if self.width - sum(widths) < 75 * mm:
            whole = False
            widths = [self._column_width(head, values) for head, values in zip(others, columns, strict=True)]
        description_width = max(self.width - sum(widths), 40 * mm)
        all_widths = [widths[0], description_width, *widths[1:]]
        head_cells = tuple(
            ((head, styles.cell_head),) if whole else _lines_of(head, styles.cell_head, width - 2 * _PAD)
            for head, width in zip(heads, all_widths, strict=True)
        )
        rows = [_Row(head_cells, background=_SHADE, rule_below=_HEAVY)]
        text_width = description_width - 2 * _PAD
        cell = styles.cell
        for line, (pos, qty, unit, price, rate, net) in zip(doc.lines, cells, strict=True):
            description = _lines_of(line.description, cell, text_width)
            if line.vat_exemption_reason:
                description += _lines_of(line.vat_exemption_reason, styles.cell_note, text_width)
            row = (
                ((pos, cell),),
                description,
                ((qty, cell),),
                ((unit, cell),),
                ((price, cell),),
                ((rate, cell),),
                ((net, cell),),
            )
            rows.append(_Row(row, rule_below=_THIN))
        # The column headings come back at the top of every page the table runs onto.
        return _Grid(all_widths, "LLRLRRR", rows, header=1, page_height=self.page_height)

    def _column_width(self, head: str, values: Sequence[str], *, whole: bool = False) -> float:
        """Wide enough for every value on one line, and for the heading (`whole`) or its longest word."""
        widest_value = max((_width(v, self.styles.cell) for v in values), default=0.0)
        words = [head] if whole else head.split()
        widest_word = max(_width(w, self.styles.cell_head) for w in words)
        return max(widest_value, widest_word) + 2 * _PAD + 1

    def _unit(self, code: str) -> str:
        name = UNIT_NAMES.get(code)
        if name is None:
            return code
        if isinstance(name, str):
            return name
        return name.get(self.language, name["en"])

    # -- VAT, totals, payment

    def _category(self, code: str) -> str:
        return self.labels.get(f"cat_{code}", code)

    def _vat_breakdown(self) -> list[Flowable]:
        fmt, labels, styles = self.fmt, self.labels, self.styles
        groups = self.doc.vat_breakdown
        rates = [fmt.percent(group.vat_rate) for group in groups]
        taxable = [fmt.money(group.taxable_amount) for group in groups]
        taxes = [fmt.money(group.tax_amount) for group in groups]
        money_width = self._column_width(labels["taxable_amount"], taxable + taxes, whole=True)
        money_width = max(money_width, self._column_width(labels["vat_amount"], [], whole=True))
        rate_width = self._column_width(labels["vat_rate"], rates)
        first = self.width - rate_width - 2 * money_width
        heads = (labels["vat_category"], labels["vat_rate"], labels["taxable_amount"], labels["vat_amount"])
        head_widths = (first, rate_width, money_width, money_width)
        rows = [
            _Row(
                tuple(_lines_of(h, styles.cell_head, w - 2 * _PAD) for h, w in zip(heads, head_widths, strict=True)),
                top=2.5,
                bottom=2.5,
                background=_SHADE,
                rule_below=_HEAVY,
            )
        ]
        for group, rate, base, tax in zip(groups, rates, taxable, taxes, strict=True):
            name = _lines_of(
                f"{self._category(group.vat_category)} ({group.vat_category})", styles.cell, first - 2 * _PAD
            )
            if group.exemption_reason:
                name += _lines_of(group.exemption_reason, styles.cell_note, first - 2 * _PAD)
            cells = (name, ((rate, styles.cell),), ((base, styles.cell),), ((tax, styles.cell),))
            rows.append(_Row(cells, top=2.5, bottom=2.5, rule_below=_THIN))
        grid = _Grid(head_widths, "LRRR", rows)
        return [_Text([(labels["vat_breakdown"], styles.heading)]), Spacer(0, 2), grid]

    def _allowances_charges(self) -> _Grid:
        fmt, labels, styles = self.fmt, self.labels, self.styles
        items: list[tuple[str, str, str]] = []
        for item in self.doc.allowances_charges:
            kind = labels["charge" if item.is_charge else "allowance"]
            reason = f"{kind}: {item.reason}" if item.reason else kind
            amount = item.amount if item.is_charge else -item.amount
            items.append((reason, fmt.percent(item.vat_rate), fmt.money(amount)))
        amount_width = self._column_width(labels["net_amount"], [r[2] for r in items])
        rate_width = self._column_width(labels["vat_rate"], [r[1] for r in items])
        first = self.width - amount_width - rate_width
        rows = [
            _Row(
                (_lines_of(reason, styles.cell, first - 2 * _PAD), ((rate, styles.cell),), ((amount, styles.cell),)),
                top=3,
                bottom=3,
                rule_below=_THIN,
            )
            for reason, rate, amount in items
        ]
        return _Grid([first, rate_width, amount_width], "LRR", rows)

    def _totals(self) -> _Grid:
        doc, fmt, labels, styles = self.doc, self.fmt, self.labels, self.styles
        amounts: list[tuple[str, str]] = []
        if doc.allowances_charges:
            amounts.append((labels["line_total"], fmt.money(doc.line_total)))
            if doc.allowance_total:
                amounts.append((labels["allowance"], fmt.money(-doc.allowance_total)))
            if doc.charge_total:
                amounts.append((labels["charge"], fmt.money(doc.charge_total)))
        amounts += [
            (labels["net_total"], fmt.money(doc.net_total)),
            (labels["vat_total"], fmt.money(doc.vat_total)),
            (labels["gross_total"], fmt.money(doc.gross_total)),
            (labels["paid"], fmt.money(doc.prepaid_amount)),
            (labels["amount_due"], fmt.money(doc.amount_due)),
        ]
        gross, due = len(amounts) - 3, len(amounts) - 1
        value_width = max(_width(v, styles.total_due) for _, v in amounts) + 2 * _PAD + 2
        label_width = max(_width(k, styles.total_due) for k, _ in amounts) + 2 * _PAD + 2
        rows: list[_Row] = []
        for index, (label, value) in enumerate(amounts):
            style = styles.total_due if index == due else styles.strong if index == gross else styles.body
            cells = (((label, style),), ((value, style),))
            if index == due:
                rows.append(_Row(cells, top=2.5, bottom=2.5, background=_SHADE, rule_above=_HEAVY))
            else:
                rows.append(_Row(cells, top=2.5, bottom=2.5, rule_above=_HEAVY if index == gross else None))
        return _Grid([max(label_width, 40 * mm), max(value_width, 30 * mm)], "LR", rows, h_align="RIGHT")

    def _payment(self, width: float) -> list[Flowable]:
        doc, labels, styles = self.doc, self.labels, self.styles
        if not (doc.payment_terms or doc.iban or doc.bic):
            return []
        heading = _Text([(labels["payment"], styles.heading)])
        heading.keepWithNext = 1
        payment: list[Flowable] = [heading, Spacer(0, 2)]
        if doc.payment_terms:
            payment.append(_Text([(doc.payment_terms, styles.body)]))
        details = [
            (labels["iban"], _group_iban(doc.iban) if doc.iban else None),
            (labels["bic"], doc.bic),
            (labels["payment_reference"], doc.payment_reference),
        ]
        rows = [(label, value) for label, value in details if value]
        if rows:
            # What a payer types into a bank form, in bold beside its label.
            label_width = max(_width(label, styles.body) for label, _ in rows) + 3 * mm
            value_width = max(width - label_width, 20 * mm)
            grid = _Grid(
                [label_width, value_width],
                "LL",
                [
                    _Row((((label, styles.body),), _lines_of(value, styles.strong, value_width)), 0, 0)
                    for label, value in rows
                ],
                pad=0,
            )
            payment += [Spacer(0, 1), grid]
        return payment


def _group_iban(iban: str) -> str:
    # IBANs are printed in groups of four (ISO 13616 paper format).
    compact = "".join(iban.split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _logo(data: bytes, *, max_width: float, max_height: float) -> Image:
    try:
        width, height = ImageReader(BytesIO(data)).getSize()
    except Exception as exc:  # ReportLab/Pillow raise many kinds for a bad image
        raise ValueError("the logo is not a readable PNG or JPEG image") from exc
    scale = min(max_width / width, max_height / height, 1.0)
    return Image(BytesIO(data), width=width * scale, height=height * scale, hAlign="LEFT")


# --------------------------------------------------------------------------------------------- pages


@dataclass(frozen=True, slots=True)
class _Footer:
    fonts: _Fonts
    page_label: str
    seller_line: str
    margin: float

    def draw(self, canvas: Canvas, page: int, total: int) -> None:
        width, _ = canvas._pagesize
        y = self.margin - 2 * mm
        canvas.saveState()
        canvas.setStrokeColor(_RULE)
        canvas.setLineWidth(0.4)
        canvas.line(self.margin, y + 4 * mm, width - self.margin, y + 4 * mm)
        canvas.setFillColor(_MUTED)
        canvas.setFont(self.fonts.regular, _SMALL)
        canvas.drawString(self.margin, y, self.seller_line)
        canvas.drawRightString(width - self.margin, y, self.page_label.format(page=page, total=total))
        canvas.restoreState()


class _PagedCanvas(Canvas):  # type: ignore[misc]  # ReportLab is untyped
    """Holds every finished page until `save`, when the page count is known, then adds "Page x of y"."""

    def __init__(self, *args: Any, footer: _Footer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._held: list[dict[str, Any]] = []

    def showPage(self) -> None:  # ReportLab's method name
        self._held.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        if self._code:
            self.showPage()
        total = len(self._held)
        for number, state in enumerate(self._held, start=1):
            self.__dict__.update(state)
            self._footer.draw(self, number, total)
            Canvas.showPage(self)
        Canvas.save(self)


def render_pdf(doc: InvoiceDocument, *, page_size: PageSize = "A4", fonts_dir: Path | None = None) -> bytes:
    """The invoice or credit note as PDF bytes; equal documents give equal bytes.

    Raises FontNotFoundError when the TrueType fonts are missing and ValueError for an unreadable logo.
    """
    fonts = _fonts(fonts_dir)
    size = _PAGE_SIZES[page_size]
    labels = labels_for(doc.language)
    title = f"{labels['credit_note' if doc.kind == 'credit_note' else 'invoice']} {doc.number}".strip()
    buffer = BytesIO()
    template = BaseDocTemplate(
        buffer,
        pagesize=size,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + _FOOTER_SPACE,
        title=title,
        author=doc.seller.legal_name or doc.seller.name,
        subject=title,
        creator=f"invoiceflow {TEMPLATE_VERSION}",
        lang=doc.language,
        invariant=1,
        pageCompression=1,
        initialFontName=fonts.regular,
    )
    seller = doc.seller.legal_name or doc.seller.name
    if doc.seller.vat_id:
        seller = f"{seller} · {labels['vat_id']} {doc.seller.vat_id}"
    # Every page names the document it belongs to: pages of a long invoice get separated and copied.
    page_label = f"{title}  ·  {labels['page']}" if doc.number else labels["page"]
    footer = _Footer(fonts=fonts, page_label=page_label, seller_line=seller, margin=_MARGIN)
    # A frame without inner padding: tables sized to the frame width line up with the margins exactly.
    frame = Frame(
        template.leftMargin,
        template.bottomMargin,
        template.width,
        template.height,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="body",
    )
    template.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    story = _Renderer(doc, fonts, template.width, template.height).story()
    template.build(story, canvasmaker=partial(_PagedCanvas, footer=footer))
    return buffer.getvalue()
