"""Orders: what a client ordered, before it is invoiced. Emits OrderCreated, OrderStatusChanged,
OrderDeleted. The invoices domain turns an order into an invoice (and records OrderInvoiced)."""
