"""E-invoicing: safe parsing of untrusted XML and validation of UBL 2.1 and UN/CEFACT CII D16B documents
against the official XSD, EN 16931 and Peppol BIS Billing 3.0 rules (the folder named by
`INVOICEFLOW_EINVOICE_RULES_DIR`; the artefacts are never copied into this package).

Owns `POST /api/v1/einvoices/validate` and `invoiceflow einvoice validate`. Stores nothing; emits and
consumes no events yet.
"""
