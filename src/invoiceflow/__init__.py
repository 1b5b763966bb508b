"""invoiceflow: invoicing and e-invoicing automation platform."""

__version__ = "0.1.0"
