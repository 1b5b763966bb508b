"""The invoice PDF, drawn with ReportLab's platypus from an `InvoiceDocument`.

Text is set in an embedded TrueType font (DejaVu Sans by default) because the 14 standard PDF fonts
cannot show "Łódź" and are not embedded, which PDF/A (Factur-X) forbids. Numbers, dates and amounts are
formatted by Babel for the document's language. The output is deterministic (same document, same bytes),
which lets a stored PDF be trusted to match its source checksum.
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
from xml.sax.saxutils import escape

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import NumberPattern, format_currency, format_decimal, format_percent
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
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
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from invoiceflow.core.money import minor_unit
from invoiceflow.documents.model import InvoiceDocument, Party

# Bump when the layout changes: stored PDFs are keyed on (source checksum, TEMPLATE_VERSION).
TEMPLATE_VERSION = "pdf-1"

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
    """Babel formatting for one document: its locale and its currency's minor unit."""

    def __init__(self, language: str, currency: str) -> None:
        self.locale = _locale(language)
        self.currency = currency
        self.places = minor_unit(currency)

    def money(self, value: Decimal) -> str:
        return format_currency(value, self.currency, locale=self.locale)

    def amount(self, value: Decimal) -> str:
        """An amount without the currency sign, always with the currency's decimals (line table)."""
        return str(_pattern(self.locale, self.places).apply(value, self.locale))

    def price(self, value: Decimal) -> str:
        """A unit price: at least the currency's decimals, more when the price has them (0.125)."""
        exponent = value.as_tuple().exponent
        places = max(self.places, -exponent if isinstance(exponent, int) else 0)
        return str(_pattern(self.locale, places).apply(value, self.locale))

    def number(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def percent(self, rate: Decimal) -> str:
        return format_percent(rate.scaleb(-2), locale=self.locale, decimal_quantization=False)

    def date(self, value: date) -> str:
        return format_date(value, "medium", locale=self.locale)


@lru_cache(maxsize=256)
def _pattern(locale: Locale, places: int) -> NumberPattern:
    # The locale's own decimal pattern (grouping, separators) with a fixed number of decimals.
    pattern: NumberPattern = copy.copy(locale.decimal_formats[None])
    pattern.frac_prec = (places, places)
    return pattern


# --------------------------------------------------------------------------------------------- layout

_INK = colors.HexColor("#1F2328")
_MUTED_HEX = "#59636E"
_MUTED = colors.HexColor(_MUTED_HEX)
_RULE = colors.HexColor("#C9D1D9")
_SHADE = colors.HexColor("#EEF1F4")
_MARGIN = 18 * mm
_FOOTER_SPACE = 10 * mm
_BODY = 9
_SMALL = 7.5
_CELL = 8.5
_PAD = 4


@dataclass(frozen=True, slots=True)
class _Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    heading: ParagraphStyle
    title: ParagraphStyle
    caption: ParagraphStyle
    cell: ParagraphStyle
    head_left: ParagraphStyle
    head_right: ParagraphStyle
    meta_label: ParagraphStyle
    meta_value: ParagraphStyle


@lru_cache(maxsize=8)
def _styles(fonts: _Fonts) -> _Styles:
    def style(name: str, **kw: Any) -> ParagraphStyle:
        base = {"fontName": fonts.regular, "fontSize": _BODY, "leading": _BODY * 1.3, "textColor": _INK}
        return ParagraphStyle(name, **(base | kw))

    return _Styles(
        body=style("body"),
        small=style("small", fontSize=_SMALL, leading=_SMALL * 1.3, textColor=_MUTED),
        heading=style("heading", fontName=fonts.bold, fontSize=10, leading=13, spaceBefore=8, spaceAfter=3),
        title=style("title", fontName=fonts.bold, fontSize=20, leading=24, alignment=TA_RIGHT, spaceAfter=6),
        caption=style("caption", fontSize=_SMALL, leading=_SMALL * 1.3, textColor=_MUTED, alignment=TA_RIGHT),
        cell=style("cell", fontSize=_CELL, leading=_CELL * 1.25),
        head_left=style("head_left", fontName=fonts.bold, fontSize=_CELL, leading=_CELL * 1.2),
        head_right=style("head_right", fontName=fonts.bold, fontSize=_CELL, leading=_CELL * 1.2, alignment=TA_RIGHT),
        meta_label=style("meta_label", fontSize=_CELL, leading=_CELL * 1.3, textColor=_MUTED, alignment=TA_LEFT),
        meta_value=style("meta_value", fontSize=_CELL, leading=_CELL * 1.3, alignment=TA_RIGHT),
    )


def _markup(text: str) -> str:
    """User text as Paragraph markup: escaped, line breaks kept."""
    return "<br/>".join(escape(part) for part in text.splitlines())


class _Renderer:
    def __init__(self, doc: InvoiceDocument, fonts: _Fonts, width: float) -> None:
        self.doc = doc
        self.fonts = fonts
        self.width = width
        self.fmt = _Format(doc.language, doc.currency)
        self.labels = labels_for(doc.language)
        self.styles = _styles(fonts)
        self.language = _language(doc.language)

    def story(self) -> list[Flowable]:
        doc = self.doc
        story: list[Flowable] = [self._header(), Spacer(0, 8 * mm), self._addresses(), Spacer(0, 7 * mm)]
        story.append(Paragraph(escape(self.labels["amounts_in"].format(currency=doc.currency)), self.styles.caption))
        story.append(self._lines())
        story.append(Spacer(0, 5 * mm))
        closing: list[Flowable] = []
        if doc.allowances_charges:
            closing.append(self._allowances_charges())
        closing += [self._vat_breakdown(), Spacer(0, 4 * mm), self._totals()]
        story.append(KeepTogether(closing))
        story += self._payment()
        if doc.notes:
            story += [Paragraph(escape(self.labels["notes"]), self.styles.heading)]
            story += [Paragraph(_markup(doc.notes), self.styles.body)]
        return story

    # -- header: seller on the left, title and references on the right

    def _header(self) -> Table:
        doc, labels, fmt = self.doc, self.labels, self.fmt
        left: list[Flowable] = []
        if doc.logo:
            left += [_logo(doc.logo, max_width=55 * mm, max_height=22 * mm), Spacer(0, 3 * mm)]
        left.append(Paragraph(self._party(doc.seller, details=True), self.styles.body))
        meta: list[tuple[str, str]] = [(labels["number"], doc.number), (labels["issue_date"], fmt.date(doc.issue_date))]
        if doc.due_date is not None:
            meta.append((labels["due_date"], fmt.date(doc.due_date)))
        if doc.buyer_reference:
            meta.append((labels["buyer_reference"], doc.buyer_reference))
        if doc.order_reference:
            meta.append((labels["order_reference"], doc.order_reference))
        if doc.kind == "credit_note" and doc.preceding_invoice_number:
            meta.append((labels["credits_invoice"], doc.preceding_invoice_number))
        right_width = self.width * 0.45
        meta_table = Table(
            [
                [Paragraph(escape(k), self.styles.meta_label), Paragraph(escape(v), self.styles.meta_value)]
                for k, v in meta
            ],
            colWidths=[right_width * 0.45, right_width * 0.55],
            hAlign="RIGHT",
            style=TableStyle([*self._plain(), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]),
        )
        title = Paragraph(escape(labels["credit_note" if doc.kind == "credit_note" else "invoice"]), self.styles.title)
        return Table(
            [[left, [title, meta_table]]],
            colWidths=[self.width - right_width, right_width],
            style=TableStyle(self._plain()),
        )

    def _plain(self) -> list[tuple[Any, ...]]:
        """A layout table: no padding, top-aligned, and our font for empty cells (ReportLab's default is
        Helvetica, which would put a non-embedded standard font into the PDF)."""
        return [
            ("FONT", (0, 0), (-1, -1), self.fonts.regular, _BODY),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            *((side, (0, 0), (-1, -1), 0) for side in ("LEFTPADDING", "RIGHTPADDING", "TOPPADDING", "BOTTOMPADDING")),
        ]

    def _party(self, party: Party, *, details: bool) -> str:
        labels = self.labels
        rows = [f"<b>{escape(party.name)}</b>"]
        if party.legal_name and party.legal_name != party.name:
            rows.append(escape(party.legal_name))
        rows += [escape(line) for line in (party.line1, party.line2) if line]
        place = self._place(party)
        rows += [escape(line) for line in place]
        if party.country:
            rows.append(escape(self.fmt.locale.territories.get(party.country, party.country)))
        extra: list[str] = []
        if party.vat_id:
            extra.append(f"{escape(labels['vat_id'])}: {escape(party.vat_id)}")
        if party.company_id:
            extra.append(f"{escape(labels['company_id'])}: {escape(party.company_id)}")
        if details and party.email:
            extra.append(f"{escape(labels['email'])}: {escape(party.email)}")
        if details and party.phone:
            extra.append(f"{escape(labels['phone'])}: {escape(party.phone)}")
        if extra:
            rows.append(f'<font size="{_SMALL + 0.5}" color="{_MUTED_HEX}">{"<br/>".join(extra)}</font>')
        return "<br/>".join(rows)

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

    def _addresses(self) -> Table:
        doc, styles = self.doc, self.styles
        gap = 6 * mm
        box = (self.width - gap) / 2

        def block(label: str, party: Party) -> list[Flowable]:
            return [
                Paragraph(escape(label).upper(), self.styles.small),
                Spacer(0, 1.5 * mm),
                Paragraph(self._party(party, details=False), styles.body),
            ]

        bill = block(self.labels["bill_to"], doc.buyer)
        ship: list[Flowable] | str = block(self.labels["ship_to"], doc.ship_to) if doc.ship_to else ""
        commands: list[tuple[Any, ...]] = [
            *self._plain(),
            ("BOX", (0, 0), (0, 0), 0.6, _RULE),
            ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3 * mm),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5 * mm),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm),
        ]
        if doc.ship_to:
            commands.append(("BOX", (2, 0), (2, 0), 0.6, _RULE))
        return Table([[bill, "", ship]], colWidths=[box, gap, box], style=TableStyle(commands))

    # -- the item table

    def _lines(self) -> Table:
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
        widths = [self._column_width(head, values, whole=True) for head, values in zip(others, columns, strict=True)]
        if self.width - sum(widths) < 75 * mm:
            widths = [self._column_width(head, values) for head, values in zip(others, columns, strict=True)]
        description_width = max(self.width - sum(widths), 40 * mm)
        header = [
            Paragraph(escape(head), styles.head_left if i in (0, 1, 3) else styles.head_right)
            for i, head in enumerate(heads)
        ]
        rows: list[list[Any]] = [header]
        for line, (pos, qty, unit, price, rate, net) in zip(doc.lines, cells, strict=True):
            text = _markup(line.description)
            if line.vat_exemption_reason:
                text += f'<br/><font size="{_SMALL}" color="{_MUTED_HEX}">{escape(line.vat_exemption_reason)}</font>'
            rows.append([pos, Paragraph(text, styles.cell), qty, unit, price, rate, net])
        style = TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), self.fonts.regular, _CELL, _CELL * 1.25),
                ("TEXTCOLOR", (0, 0), (-1, -1), _INK),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (2, 0), (2, -1), "RIGHT"),
                ("ALIGN", (4, 0), (-1, -1), "RIGHT"),
                ("BACKGROUND", (0, 0), (-1, 0), _SHADE),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, _INK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.3, _RULE),
                ("LEFTPADDING", (0, 0), (-1, -1), _PAD),
                ("RIGHTPADDING", (0, 0), (-1, -1), _PAD),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
        # repeatRows: the column headings come back at the top of every page the table runs onto.
        return Table(rows, colWidths=[widths[0], description_width, *widths[1:]], repeatRows=1, style=style)

    def _column_width(self, head: str, values: Sequence[str], *, whole: bool = False) -> float:
        """Wide enough for every value on one line, and for the heading (`whole`) or its longest word."""
        widest_value = max((pdfmetrics.stringWidth(v, self.fonts.regular, _CELL) for v in values), default=0.0)
        words = [head] if whole else head.split()
        widest_word = max(pdfmetrics.stringWidth(w, self.fonts.bold, _CELL) for w in words)
        return float(max(widest_value, widest_word)) + 2 * _PAD + 1

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

    def _vat_breakdown(self) -> Table:
        fmt, labels, styles = self.fmt, self.labels, self.styles
        rows: list[list[Any]] = [
            [
                Paragraph(escape(labels["vat_category"]), styles.head_left),
                Paragraph(escape(labels["vat_rate"]), styles.head_right),
                Paragraph(escape(labels["taxable_amount"]), styles.head_right),
                Paragraph(escape(labels["vat_amount"]), styles.head_right),
            ]
        ]
        for group in self.doc.vat_breakdown:
            text = f"{escape(self._category(group.vat_category))} ({escape(group.vat_category)})"
            if group.exemption_reason:
                text += f'<br/><font size="{_SMALL}" color="{_MUTED_HEX}">{escape(group.exemption_reason)}</font>'
            rows.append(
                [
                    Paragraph(text, styles.cell),
                    fmt.percent(group.vat_rate),
                    fmt.money(group.taxable_amount),
                    fmt.money(group.tax_amount),
                ]
            )
        amounts = [r[2] for r in rows[1:]] + [r[3] for r in rows[1:]]
        money_width = self._column_width(labels["taxable_amount"], amounts, whole=True)
        rate_width = self._column_width(labels["vat_rate"], [r[1] for r in rows[1:]])
        first = self.width - rate_width - 2 * money_width
        return Table(
            [[Paragraph(escape(labels["vat_breakdown"]), styles.heading), "", "", ""], *rows],
            colWidths=[first, rate_width, money_width, money_width],
            style=TableStyle(
                [
                    ("SPAN", (0, 0), (-1, 0)),
                    ("FONT", (0, 0), (-1, -1), self.fonts.regular, _CELL, _CELL * 1.25),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                    ("BACKGROUND", (0, 1), (-1, 1), _SHADE),
                    ("LINEBELOW", (0, 1), (-1, 1), 0.8, _INK),
                    ("LINEBELOW", (0, 2), (-1, -1), 0.3, _RULE),
                    ("LEFTPADDING", (0, 0), (-1, -1), _PAD),
                    ("RIGHTPADDING", (0, 0), (-1, -1), _PAD),
                    ("LEFTPADDING", (0, 0), (0, 0), 0),
                ]
            ),
        )

    def _allowances_charges(self) -> Table:
        fmt, labels = self.fmt, self.labels
        rows = []
        for item in self.doc.allowances_charges:
            kind = labels["charge" if item.is_charge else "allowance"]
            reason = f"{kind}: {item.reason}" if item.reason else kind
            amount = item.amount if item.is_charge else -item.amount
            rows.append([Paragraph(escape(reason), self.styles.cell), fmt.percent(item.vat_rate), fmt.money(amount)])
        amount_width = self._column_width(labels["net_amount"], [r[2] for r in rows])
        rate_width = self._column_width(labels["vat_rate"], [r[1] for r in rows])
        return Table(
            rows,
            colWidths=[self.width - amount_width - rate_width, rate_width, amount_width],
            style=TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), self.fonts.regular, _CELL, _CELL * 1.25),
                    ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.3, _RULE),
                ]
            ),
        )

    def _totals(self) -> Table:
        doc, fmt, labels = self.doc, self.fmt, self.labels
        rows: list[tuple[str, str]] = []
        if doc.allowances_charges:
            rows.append((labels["line_total"], fmt.money(doc.line_total)))
            if doc.allowance_total:
                rows.append((labels["allowance"], fmt.money(-doc.allowance_total)))
            if doc.charge_total:
                rows.append((labels["charge"], fmt.money(doc.charge_total)))
        rows += [
            (labels["net_total"], fmt.money(doc.net_total)),
            (labels["vat_total"], fmt.money(doc.vat_total)),
            (labels["gross_total"], fmt.money(doc.gross_total)),
            (labels["paid"], fmt.money(doc.prepaid_amount)),
            (labels["amount_due"], fmt.money(doc.amount_due)),
        ]
        gross, due = len(rows) - 3, len(rows) - 1
        value_width = max(pdfmetrics.stringWidth(v, self.fonts.bold, _BODY) for _, v in rows) + 2 * _PAD + 2
        label_width = max(pdfmetrics.stringWidth(k, self.fonts.bold, _BODY) for k, _ in rows) + 2 * _PAD + 2
        return Table(
            rows,
            colWidths=[max(label_width, 45 * mm), max(value_width, 30 * mm)],
            hAlign="RIGHT",
            style=TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), self.fonts.regular, _BODY, _BODY * 1.3),
                    ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                    ("FONT", (0, gross), (-1, gross), self.fonts.bold, _BODY, _BODY * 1.3),
                    ("LINEABOVE", (0, gross), (-1, gross), 0.8, _INK),
                    ("FONT", (0, due), (-1, due), self.fonts.bold, 10.5, 13),
                    ("BACKGROUND", (0, due), (-1, due), _SHADE),
                    ("LINEABOVE", (0, due), (-1, due), 0.8, _INK),
                    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                ]
            ),
        )

    def _payment(self) -> list[Flowable]:
        doc, labels = self.doc, self.labels
        rows: list[str] = []
        if doc.payment_terms:
            rows.append(_markup(doc.payment_terms))
        details = [
            (labels["iban"], _group_iban(doc.iban) if doc.iban else None),
            (labels["bic"], doc.bic),
            (labels["payment_reference"], doc.payment_reference),
        ]
        rows += [f"{escape(label)}: <b>{escape(value)}</b>" for label, value in details if value]
        if not (doc.payment_terms or doc.iban or doc.bic):
            return []
        return [
            KeepTogether(
                [
                    Paragraph(escape(labels["payment"]), self.styles.heading),
                    Paragraph("<br/>".join(rows), self.styles.body),
                ]
            )
        ]


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
    footer = _Footer(fonts=fonts, page_label=labels["page"], seller_line=seller, margin=_MARGIN)
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
    story = _Renderer(doc, fonts, template.width).story()
    template.build(story, canvasmaker=partial(_PagedCanvas, footer=footer))
    return buffer.getvalue()
