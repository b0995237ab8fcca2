"""adm_edu: DDIM, Improved DDPM and ADM (guided diffusion), one notebook per idea."""
__version__ = "0.1.0"
