"""Invoices: lines, totals, numbering, status lifecycle; turning orders into invoices; credit notes.

Emits InvoiceCreated, InvoiceUpdated, InvoiceStatusChanged, InvoiceDeleted, OrderInvoiced, CreditNoteCreated.
"""
