"""Batches: many images (files, a ZIP with folders, or a folder via the CLI) processed as one
unit. Each item is an ordinary Job with its own credit hold, so pricing, the ledger, workers,
retries and refunds are exactly those of single jobs."""
