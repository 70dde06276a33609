"""latentjax: which latent dimensions of a GAN control which concept, in JAX."""
__version__ = "0.1.0"
