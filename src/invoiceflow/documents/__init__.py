"""Documents: what an invoice looks like outside the API.

Owns the document model every renderer reads (`model`: one immutable picture of an invoice whose totals
come from the money core, so no document can disagree with the API), the PDF (`pdf`) and Excel (`xlsx`)
renderings, and the stored documents in object storage with their expiring download links.

Renderers are pure (document in, bytes out) and emit nothing. PDFGenerated is emitted once a rendering
is stored; the invoice workflow asks for renderings, this package never reacts to invoice events itself.
"""
