"""Training side of edge-ae: autoencoder families, objectives, data and the loop (needs torch)."""
