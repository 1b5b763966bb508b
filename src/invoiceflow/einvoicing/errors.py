"""E-invoicing errors. Each keeps a stable code: API clients and the CLI branch on it, not on the text."""

from __future__ import annotations

from invoiceflow.core.errors import AppError, PayloadTooLarge, ServiceUnavailable


class XmlTooLarge(PayloadTooLarge):
    """Refused before parsing: the size is known up front, so no parser work is spent on it."""

    code = "XML_TOO_LARGE"


class XmlForbiddenConstruct(AppError):
    """A DOCTYPE (and with it any entity or external DTD): never needed by UBL or CII, the root of XXE
    and entity-expansion attacks."""

    status_code = 400
    code = "XML_FORBIDDEN_CONSTRUCT"


class XmlMalformed(AppError):
    status_code = 400
    code = "XML_MALFORMED"


class XmlTooDeep(AppError):
    status_code = 400
    code = "XML_TOO_DEEP"


class XmlTooManyElements(AppError):
    status_code = 400
    code = "XML_TOO_MANY_ELEMENTS"


class UnsupportedDocument(AppError):
    """Well-formed XML whose root is not one of the e-invoice documents we know how to check."""

    status_code = 422
    code = "UNSUPPORTED_DOCUMENT"


class EInvoiceRulesMissing(ServiceUnavailable):
    """The official XSD/schematron folder is not configured or incomplete: an operator problem, not the
    caller's, hence 503."""

    code = "EINVOICE_RULES_MISSING"


class EInvoiceInvalid(AppError):
    """The invoice's own e-invoice fails the official rules: it is not handed out or issued until fixed."""

    status_code = 422
    code = "EINVOICE_INVALID"
