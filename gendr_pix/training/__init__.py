"""Training, data and evaluation tools for GenDR-Pix (not needed for inference).

Everything here uses the core library only through its public API (`gendr_pix.*`). Weights of the
perceptual networks and data are fetched once by explicit setup commands (`fetch-data`,
`fetch-weights`) into a cache directory outside the repository; library code never downloads.
"""
