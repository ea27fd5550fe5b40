"""Text encoders shared by the catalog (item embeddings) and instruction parsing."""
