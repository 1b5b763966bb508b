"""Checks an e-invoice against the official rules, layer by layer, as the rules' README prescribes.

1. **xsd** — the document's own schema, chosen by its root element: UBL 2.1 maindoc Invoice or
   CreditNote, or UN/CEFACT CII D16B *uncoupled* (code lists are the schematron's job; the coupled
   schema would reject documents over code-list versions, not over EN 16931).
2. **en16931** — the CEN EN 16931 schematron (official compiled XSLT for UBL or CII).
3. **peppol** — Peppol BIS Billing 3.0, only for documents whose CustomizationID (UBL) or GuidelineID
   (CII) says they follow it, as the README does. UBL uses the 3.0.21 rules. For CII the newest rules
   available are 3.0.19 (one release behind): they are run all the same, because a CII document that
   claims Peppol compliance is better checked against slightly older Peppol rules than not at all.
4. **facturx** — the Factur-X 1.09 profile rules (the profile's XSD, then its compiled schematron) for CII
   documents: when asked (`facturx=True`), and by itself when the GuidelineID names a Factur-X profile
   (contains "factur-x"). The profile comes from the GuidelineID; a GuidelineID of exactly
   `urn:cen.eu:en16931:2017` is the EN16931 profile, as the rules' README says. The Factur-X schematron
   reports what a profile forbids with unflagged `successful-report`s, so there a report is fatal. On a
   profile that does not claim EN 16931 compliance (EXTENDED is only "conformant"; MINIMUM and BASIC WL
   are not EN 16931 invoices at all) the EN 16931 findings are downgraded to warnings, as the README
   prescribes for EXTENDED: the profile's own rules decide there.

When the XSD layer fails, the schematron layers are **not run** and the report says so: the schematron
rules assume a schema-valid document (they cast amounts and dates and would report noise or stop with a
dynamic error), and the README defines validity as "no XSD error and no fatal assert" anyway.

A document is valid when no finding is fatal.

Costs and concurrency. Compiling the four XSLTs takes about 1 s (the EN 16931 UBL one alone 0.45 s) and
loading the three XSDs about 0.15 s, while validating a typical invoice afterwards takes about 10 ms.
So each artefact is built once per process, lazily, and kept: validators are cached per rules folder and
share one `PySaxonProcessor` (Saxon requires documents and stylesheets of one transformation to come
from the same processor). saxonche documents a compiled `PyXsltExecutable` as not thread-safe and says
to `clone()` it per thread; each transformation here runs on its own clone (about 30 µs), so
transformations from several worker threads run concurrently. lxml keeps a schema's error log on the
schema object, so XSD validation of one schema is serialised by a lock (it takes about a millisecond).

Saxon still runs one transformation at a time per process (two threads validate fewer documents per second
than one), and the schematron layers are most of the time (20-line UBL: EN 16931 ~8 ms, Peppol ~6 ms). So
with `workers=1` (the default on two or more CPUs, see `_default_workers`) the layers after EN 16931 (Peppol,
the Factur-X profile rules) run in a sidecar process on the other core (`validator_pool`) while this process
runs the XSD and EN 16931 on its own parse of the same text: the latency is the longer of the two instead of
their sum, with the same findings. Whenever the sidecar is not ready or not usable, the layers run here.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from invoiceflow.core.settings import Settings, get_settings
from invoiceflow.einvoicing.errors import EInvoiceRulesMissing
from invoiceflow.einvoicing.validator_pool import Job, SchematronSidecar
from invoiceflow.einvoicing.xmlsafe import (
    CII_NS,
    DEFAULT_MAX_BYTES,
    DocumentKind,
    DocumentType,
    Syntax,
    document_kind,
    parse_xml,
)

log = logging.getLogger("invoiceflow.einvoicing")

Severity = Literal["fatal", "warning", "information"]
Layer = Literal["xsd", "en16931", "peppol", "facturx"]
FacturXProfile = Literal["MINIMUM", "BASIC-WL", "BASIC", "EN16931", "EXTENDED"]
LayerStatus = Literal["passed", "failed", "skipped"]

RULES_DIR_SETTING = "INVOICEFLOW_EINVOICE_RULES_DIR"

# Paths inside the rules folder (the layout of the shared `einvoicing` folder).
XSD_FILES: dict[DocumentType, str] = {
    "Invoice": "xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
    "CreditNote": "xsd/ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
    "CrossIndustryInvoice": "xsd/cii-d16b/uncoupled/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd",
}
SCHEMATRON_FILES: dict[tuple[Layer, Syntax], str] = {
    ("en16931", "ubl"): "schematron/en16931-ubl/xslt/EN16931-UBL-validation.xslt",
    ("en16931", "cii"): "schematron/en16931-cii/xslt/EN16931-CII-validation.xslt",
    ("peppol", "ubl"): "schematron/peppol-bis3/xslt/PEPPOL-EN16931-UBL.xslt",
    ("peppol", "cii"): "schematron/peppol-bis3/xslt/PEPPOL-EN16931-CII.xslt",
}

# Factur-X 1.09 profile rules (the rules' folder names BASIC WL "BASIC-WL", its files "BASICWL"/"BASIC-WL").
FACTURX_XSD_FILES: dict[FacturXProfile, str] = {
    "MINIMUM": "xsd/facturx-1.09/MINIMUM/FACTUR-X_MINIMUM.xsd",
    "BASIC-WL": "xsd/facturx-1.09/BASIC-WL/FACTUR-X_BASICWL.xsd",
    "BASIC": "xsd/facturx-1.09/BASIC/FACTUR-X_BASIC.xsd",
    "EN16931": "xsd/facturx-1.09/EN16931/FACTUR-X_EN16931.xsd",
    "EXTENDED": "xsd/facturx-1.09/EXTENDED/FACTUR-X_EXTENDED.xsd",
}
# Each XSLT reads its *_codedb.xml beside it through document(): compiled from its own path, never copied.
FACTURX_SCHEMATRON_FILES: dict[FacturXProfile, str] = {
    profile: f"schematron/facturx-1.09/xslt/FACTUR-X_{profile}.xslt" for profile in FACTURX_XSD_FILES
}
# The specification identifiers (BT-24) of the Factur-X 1.0 profiles.
FACTURX_GUIDELINES: dict[str, FacturXProfile] = {
    "urn:factur-x.eu:1p0:minimum": "MINIMUM",
    "urn:factur-x.eu:1p0:basicwl": "BASIC-WL",
    "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic": "BASIC",
    "urn:cen.eu:en16931:2017": "EN16931",
    "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended": "EXTENDED",
}
# Profiles whose documents do not claim EN 16931 compliance: their EN 16931 findings are warnings.
NOT_EN16931_COMPLIANT: frozenset[FacturXProfile] = frozenset({"MINIMUM", "BASIC-WL", "EXTENDED"})

# Peppol BIS Billing 3.0's specification identifier (BT-24); national extensions of it append to it.
PEPPOL_BILLING_3 = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"

_SVRL = "http://purl.oclc.org/dsdl/svrl"
_UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_CII_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_CII_GUIDELINE = (
    f"{{{CII_NS}}}ExchangedDocumentContext/{{{_CII_RAM}}}GuidelineSpecifiedDocumentContextParameter/{{{_CII_RAM}}}ID"
)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_SEVERITIES: dict[str, Severity] = {
    "fatal": "fatal",
    "error": "fatal",
    "warning": "warning",
    "warn": "warning",
    "information": "information",
    "info": "information",
}


@dataclass(frozen=True)
class Finding:
    """One broken rule. `location` is an XPath into the document; `line` is known for XSD errors only."""

    rule_id: str
    severity: Severity
    message: str
    location: str
    layer: Layer
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "message": self.message,
            "location": self.location,
            "layer": self.layer,
            "line": self.line,
        }


@dataclass(frozen=True)
class SkippedLayer:
    layer: Layer
    reason: str


@dataclass(frozen=True)
class ValidationReport:
    document_type: DocumentType
    syntax: Syntax
    customization_id: str | None
    findings: tuple[Finding, ...]
    layers_run: tuple[Layer, ...]
    layers_skipped: tuple[SkippedLayer, ...] = field(default=())

    @property
    def valid(self) -> bool:
        """EN 16931 and Peppol: a document passes when nothing fatal was found (warnings do not count)."""
        return not any(f.severity == "fatal" for f in self.findings)

    def layer_status(self, layer: Layer) -> LayerStatus:
        if layer not in self.layers_run:
            return "skipped"
        fatal = any(f.layer == layer and f.severity == "fatal" for f in self.findings)
        return "failed" if fatal else "passed"

    def fatal_rule_ids(self, layer: Layer) -> set[str]:
        return {f.rule_id for f in self.findings if f.layer == layer and f.severity == "fatal"}

    def as_dict(self) -> dict[str, Any]:
        """The shape the API and `invoiceflow einvoice validate --json` return."""
        layers: list[dict[str, Any]] = [
            {"layer": layer, "status": self.layer_status(layer), "reason": None} for layer in self.layers_run
        ]
        layers += [{"layer": s.layer, "status": "skipped", "reason": s.reason} for s in self.layers_skipped]
        return {
            "valid": self.valid,
            "document_type": self.document_type,
            "syntax": self.syntax,
            "customization_id": self.customization_id,
            "findings": [f.as_dict() for f in self.findings],
            "layers": layers,
        }


# --- Saxon: one processor per process --------------------------------------------------------------

_saxon_lock = threading.Lock()
_saxon_processor: Any = None


def _saxon() -> Any:
    """The process's single `PySaxonProcessor`, created on first use (importing saxonche starts a runtime)."""
    global _saxon_processor
    with _saxon_lock:
        if _saxon_processor is None:
            from saxonche import PySaxonProcessor

            _saxon_processor = PySaxonProcessor(license=False)
        return _saxon_processor


def _missing(rules_dir: Path, relative: str) -> EInvoiceRulesMissing:
    return EInvoiceRulesMissing(
        f"E-invoice validation rules are incomplete: {relative} not found in {rules_dir}",
        details={"rules_dir": str(rules_dir), "missing": relative, "setting": RULES_DIR_SETTING},
    )


class _Schema:
    """One XSD, loaded on first use; validation is serialised because lxml keeps the error log on it."""

    def __init__(self, rules_dir: Path, relative: str, layer: Layer = "xsd") -> None:
        self.rules_dir = rules_dir
        self.relative = relative
        self.path = rules_dir / relative
        self.layer: Layer = layer
        self._schema: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._schema is None:
            if not self.path.is_file():
                raise _missing(self.rules_dir, self.relative)
            # Our own files, but parsed with the same no-network, no-entity settings all the same.
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            self._schema = etree.XMLSchema(etree.parse(str(self.path), parser))
        return self._schema

    def load(self) -> None:
        with self._lock:
            self._load()

    def findings(self, root: Any) -> list[Finding]:
        with self._lock:
            schema = self._load()
            if schema.validate(root):
                return []
            entries = list(schema.error_log)
        return [
            Finding(
                rule_id=entry.type_name,
                severity="fatal",
                message=entry.message,
                location=entry.path or "",
                layer=self.layer,
                line=entry.line or None,
            )
            for entry in entries
        ]


class _Schematron:
    """One compiled schematron XSLT: compiled once on first use, run on a fresh clone each time.

    `report_severity` is what an unflagged `successful-report` means in these rules (see `_svrl_findings`).
    """

    def __init__(self, rules_dir: Path, relative: str, layer: Layer, report_severity: Severity = "information") -> None:
        self.rules_dir = rules_dir
        self.relative = relative
        self.path = rules_dir / relative
        self.layer: Layer = layer
        self.report_severity: Severity = report_severity
        self._executable: Any = None
        self._lock = threading.Lock()
        self.compile_seconds: float | None = None

    def _clone(self) -> Any:
        with self._lock:
            if self._executable is None:
                if not self.path.is_file():
                    raise _missing(self.rules_dir, self.relative)
                started = time.perf_counter()
                compiler = _saxon().new_xslt30_processor()
                self._executable = compiler.compile_stylesheet(stylesheet_file=str(self.path))
                self.compile_seconds = time.perf_counter() - started
                log.info("compiled %s in %.2f s", self.relative, self.compile_seconds)
            return self._executable.clone()

    def load(self) -> None:
        self._clone()

    def findings(self, document: Any) -> list[Finding]:
        from saxonche import PySaxonApiError

        executable = self._clone()
        try:
            svrl = executable.transform_to_string(xdm_node=document)
        except PySaxonApiError as exc:
            # The rules stopped on this document (a value they cannot cast, say). That is the document's
            # failure to meet them, so it is reported as a finding rather than as a server error.
            log.warning("%s stopped with a dynamic error: %s", self.relative, exc)
            return [
                Finding(
                    rule_id="SCHEMATRON-RUNTIME-ERROR",
                    severity="fatal",
                    message=f"The {self.layer} rules could not be evaluated on this document: {exc}",
                    location="/",
                    layer=self.layer,
                )
            ]
        return list(_svrl_findings(svrl, self.layer, report_severity=self.report_severity))


def _svrl_findings(svrl: str, layer: Layer, *, report_severity: Severity = "information") -> Iterable[Finding]:
    """The failed asserts and successful reports of an SVRL report, with the rule's own flag.

    A failed assert without a flag counts as fatal (an assertion did not hold); a report without one has
    `report_severity`: information by default, fatal for the Factur-X rules, whose unflagged reports all say
    that the document uses something its profile forbids ("marked as not used in the given context",
    "Element variant ... not allowed"). The official EN 16931 and Peppol rules flag every assert. A rule
    without an id (the Factur-X reports have none) is named by its test, unless the test is a bare `true()`.
    """
    text = _XML_DECLARATION.sub("", svrl, count=1)  # lxml refuses a str that declares an encoding
    # Our own transformation's output over an already vetted document: libxml2's size limits (huge_tree)
    # would only turn a long report about a large invoice into a server error.
    root = etree.fromstring(text, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    for element in root.iter(f"{{{_SVRL}}}failed-assert", f"{{{_SVRL}}}successful-report"):
        flag = (element.get("flag") or element.get("role") or "").strip().lower()
        default: Severity = "fatal" if element.tag.endswith("failed-assert") else report_severity
        message_element = element.find(f"{{{_SVRL}}}text")
        message = " ".join("".join(message_element.itertext()).split()) if message_element is not None else ""
        test = element.get("test")
        yield Finding(
            rule_id=element.get("id") or (test if test and test != "true()" else "(unnamed rule)"),
            severity=_SEVERITIES.get(flag, default),
            message=message,
            location=element.get("location") or "",
            layer=layer,
        )


def customization_id(root: Any, kind: DocumentKind) -> str | None:
    """BT-24, the specification identifier: UBL `cbc:CustomizationID`, CII
    `GuidelineSpecifiedDocumentContextParameter/ram:ID`. It decides whether the Peppol layer applies."""
    path = f"{{{_UBL_CBC}}}CustomizationID" if kind.syntax == "ubl" else _CII_GUIDELINE
    value = root.findtext(path)
    return value.strip() if isinstance(value, str) and value.strip() else None


def is_peppol(customization: str | None) -> bool:
    return customization is not None and customization.startswith(PEPPOL_BILLING_3)


def names_facturx(customization: str | None) -> bool:
    """Whether the specification identifier explicitly claims Factur-X (then its rules run unasked)."""
    return customization is not None and "factur-x" in customization.lower()


def facturx_profile(customization: str | None) -> FacturXProfile | None:
    """The Factur-X profile a CII GuidelineID (BT-24) stands for, or None when it names none."""
    return FACTURX_GUIDELINES.get(customization or "")


class Validator:
    """The validation layers over one rules folder. Build it with `from_settings` or `get_validator` so
    that the expensive compiled artefacts are shared by the whole process.

    The Factur-X files are looked up when a profile's rules are first needed (a rules folder without them
    still validates UBL and CII against EN 16931 and Peppol, and says what is missing when asked for more).
    """

    def __init__(self, rules_dir: Path, *, workers: int | None = None) -> None:
        """`workers`: 1 runs the Peppol and Factur-X schematron layers in a sidecar process, in parallel with
        the XSD and EN 16931 layers here; 0 runs everything in this process. Default: `_default_workers()`."""
        rules_dir = Path(rules_dir).expanduser().resolve()
        if not rules_dir.is_dir():
            raise EInvoiceRulesMissing(
                f"E-invoice validation rules folder not found: {rules_dir}",
                details={"rules_dir": str(rules_dir), "setting": RULES_DIR_SETTING},
            )
        for relative in (*XSD_FILES.values(), *SCHEMATRON_FILES.values()):
            if not (rules_dir / relative).is_file():
                raise _missing(rules_dir, relative)
        self.rules_dir = rules_dir
        self._schemas = {doc: _Schema(rules_dir, rel) for doc, rel in XSD_FILES.items()}
        self._schematrons = {key: _Schematron(rules_dir, rel, key[0]) for key, rel in SCHEMATRON_FILES.items()}
        self._facturx_schemas = {p: _Schema(rules_dir, rel, "facturx") for p, rel in FACTURX_XSD_FILES.items()}
        self._facturx_schematrons = {
            p: _Schematron(rules_dir, rel, "facturx", report_severity="fatal")
            for p, rel in FACTURX_SCHEMATRON_FILES.items()
        }
        self.workers = _default_workers() if workers is None else workers
        self._sidecar: SchematronSidecar | None = None
        if self.workers > 0:
            warm = [
                _job(self._schematrons[("peppol", "ubl")]),
                _job(self._schematrons[("peppol", "cii")]),
                _job(self._facturx_schematrons["EN16931"]),
            ]
            self._sidecar = SchematronSidecar(rules_dir, warm)

    @classmethod
    def from_settings(cls, settings: Settings) -> Validator:
        if settings.einvoice_rules_dir is None:
            raise EInvoiceRulesMissing(
                f"E-invoice validation is not configured: set {RULES_DIR_SETTING} to the folder holding the "
                "official XSD and schematron files",
                details={"setting": RULES_DIR_SETTING},
            )
        return get_validator(settings.einvoice_rules_dir)

    def warm_up(self) -> dict[str, float]:
        """Load every schema and compile every XSLT now (instead of on first use); seconds per artefact.

        Of the Factur-X rules only the EN16931 profile's (what invoiceflow's own Factur-X PDFs carry) is
        compiled here: the five together would add about 2 s, for profiles only imported documents use.
        """
        timings: dict[str, float] = {}
        items: list[_Schema | _Schematron] = [
            *self._schemas.values(),
            *self._schematrons.values(),
            self._facturx_schemas["EN16931"],
            self._facturx_schematrons["EN16931"],
        ]
        sidecar = self._sidecar
        if sidecar is not None:
            # The sidecar starts first and compiles its layers on the other core meanwhile; this process then
            # compiles only what it runs itself (should the sidecar fail, the rest compiles on first use).
            sidecar.start()
            offloaded = {job[0] for job in sidecar.warm}
            items = [item for item in items if item.relative not in offloaded]
        for item in items:
            started = time.perf_counter()
            item.load()
            timings[item.relative] = time.perf_counter() - started
        if sidecar is not None:
            if sidecar.wait_ready():
                timings.update({f"{relative} (sidecar)": seconds for relative, seconds in sidecar.timings.items()})
            else:
                log.warning("the validation sidecar is not ready: validating in-process until it is")
        return timings

    def close(self) -> None:
        """Stop the sidecar process, if any (it also stops at interpreter exit); later calls run in-process."""
        if self._sidecar is not None:
            self._sidecar.close()

    @property
    def sidecar_pid(self) -> int | None:
        """The sidecar's process id while it runs (for tests and benchmarks), else None."""
        return self._sidecar.pid if self._sidecar is not None else None

    def validate(
        self, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, facturx: bool | None = None
    ) -> ValidationReport:
        """Parse untrusted bytes safely (4xx `AppError` when hostile or malformed), then validate.

        `facturx`: True adds the Factur-X layer, False leaves it out, None (the default) runs it when the
        GuidelineID names Factur-X. Blocking and CPU-bound (about 10-20 ms for a typical invoice once
        compiled, 20-80 ms more with the Factur-X layer): from async code use `validate_async`.
        """
        return self.validate_document(parse_xml(data, max_bytes=max_bytes), facturx=facturx)

    async def validate_async(
        self, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, facturx: bool | None = None
    ) -> ValidationReport:
        """`validate` on a worker thread, so the event loop keeps serving other requests meanwhile."""
        return await asyncio.to_thread(self.validate, data, max_bytes=max_bytes, facturx=facturx)

    def validate_document(self, root: Any, *, facturx: bool | None = None) -> ValidationReport:
        """Validate an already safely parsed document (see `xmlsafe.parse_xml`); `facturx` as in `validate`."""
        kind = document_kind(root)
        customization = customization_id(root, kind)
        peppol = is_peppol(customization)
        wants_facturx = names_facturx(customization) if facturx is None else facturx
        profile = facturx_profile(customization) if kind.syntax == "cii" else None
        findings = self._schemas[kind.document_type].findings(root)
        layers_run: list[Layer] = ["xsd"]
        skipped: list[SkippedLayer] = []
        if findings:
            reason = "not run: the document is not schema-valid (XSD), and the schematron rules assume it is"
            skipped.append(SkippedLayer("en16931", reason))
            if peppol:
                skipped.append(SkippedLayer("peppol", reason))
            if wants_facturx and profile is not None:
                skipped.append(SkippedLayer("facturx", reason))
        else:
            text = etree.tostring(root, encoding="unicode")
            # The layers after EN 16931 (Peppol, the Factur-X profile rules) are what a sidecar can run.
            later: list[_Schematron] = []
            if peppol:
                later.append(self._schematrons[("peppol", kind.syntax)])
            if wants_facturx and profile is not None:
                later.append(self._facturx_schematrons[profile])
            pending = self._sidecar.submit(text, [_job(s) for s in later]) if later and self._sidecar else None
            remote: list[list[Finding]] | None = None
            try:
                document = _saxon().parse_xml(xml_text=text, encoding="UTF-8")
                findings += self._schematrons[("en16931", kind.syntax)].findings(document)
                facturx_xsd = self._facturx_schemas[profile].findings(root) if wants_facturx and profile else []
            finally:
                if pending is not None:
                    remote = pending.result()
            if remote is None:
                remote = [schematron.findings(document) for schematron in later]
            else:
                _log_runtime_errors(remote)
            later_findings = iter(remote)
            layers_run.append("en16931")
            if peppol:
                findings += next(later_findings)
                layers_run.append("peppol")
            if wants_facturx and profile is not None:
                if profile in NOT_EN16931_COMPLIANT:
                    findings = [_downgraded(f) if f.layer == "en16931" else f for f in findings]
                findings += facturx_xsd
                findings += next(later_findings)
                layers_run.append("facturx")
        if not peppol:
            skipped.append(
                SkippedLayer("peppol", "not applicable: the specification identifier (BT-24) is not Peppol BIS 3.0")
            )
        if wants_facturx and profile is None:
            what = "the document is not CII" if kind.syntax != "cii" else "its GuidelineID (BT-24) names no profile"
            skipped.append(SkippedLayer("facturx", f"not applicable: {what} of Factur-X 1.0"))
        return ValidationReport(
            document_type=kind.document_type,
            syntax=kind.syntax,
            customization_id=customization,
            findings=tuple(findings),
            layers_run=tuple(layers_run),
            layers_skipped=tuple(skipped),
        )


def _default_workers() -> int:
    """The `einvoice_validation_workers` setting (INVOICEFLOW_EINVOICE_VALIDATION_WORKERS; by default 1 with two
    or more CPUs). Unless it is set explicitly, a process that multiprocessing started (a `ProcessPoolExecutor`
    worker of a batch pipeline, one of `invoiceflow serve --workers N`) gets 0: there the work is already spread
    over the cores by processes, and a sidecar per process would only add processes (measured: two pool workers
    validated fewer documents per second with a sidecar each than without, see BENCHMARKS.md)."""
    settings = get_settings()
    explicit = "einvoice_validation_workers" in settings.model_fields_set
    if not explicit and multiprocessing.parent_process() is not None:
        return 0
    return settings.einvoice_validation_workers


def _job(schematron: _Schematron) -> Job:
    """How a sidecar names a schematron layer: its file, layer and unflagged-report severity."""
    return (schematron.relative, schematron.layer, schematron.report_severity)


def _log_runtime_errors(results: list[list[Finding]]) -> None:
    """What `_Schematron.findings` logs in-process, for the findings a sidecar (which logs nothing) returned."""
    for finding in (f for layer in results for f in layer):
        if finding.rule_id == "SCHEMATRON-RUNTIME-ERROR":
            log.warning("%s layer stopped with a dynamic error (in the sidecar): %s", finding.layer, finding.message)


def _downgraded(finding: Finding) -> Finding:
    """An EN 16931 finding on a document that does not claim EN 16931 compliance: a warning, no more."""
    return replace(finding, severity="warning") if finding.severity == "fatal" else finding


_validators: dict[Path, Validator] = {}
_validators_lock = threading.Lock()


def get_validator(rules_dir: Path) -> Validator:
    """The process-wide validator for `rules_dir` (one per resolved folder)."""
    key = Path(rules_dir).expanduser().resolve()
    with _validators_lock:
        validator = _validators.get(key)
        if validator is None:
            validator = _validators[key] = Validator(key)
        return validator
