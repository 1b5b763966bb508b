"""Invoices: lines, totals, numbering, status lifecycle; turning orders into invoices.

Emits InvoiceCreated, InvoiceUpdated, InvoiceStatusChanged, InvoiceDeleted, OrderInvoiced.
"""
