"""Default Fashion-MNIST experiment: the shipped pretrained generator and classifier.

Run (trains both models, then prints their quality numbers):

    latentjax train-classifier --config configs/default.py --workdir runs/classifier
    latentjax train-gan --config configs/default.py --workdir runs/gan
    latentjax evaluate --config configs/default.py --classifier-run runs/classifier --gan-run runs/gan

Expected (measured, docs/results.md): classifier test accuracy 93.48% (15 epochs, about an
hour on a 2-core CPU); GAN (28 epochs, 2 to 3 hours on a 2-core CPU, exported as the
moving average of its generator from epoch 16) with 45.5% of 10,000 samples classified at
p >= 0.9, class shares 7.2%..14.3%, Fréchet distance 15.2 in classifier features (real train
vs test 0.23, untrained generator 154).

    latentjax reproduce --config configs/default.py

runs the paper with the shipped models (`make run`): 8 min 17 s on a 2-core Intel Xeon including
the install (docs/results.md, "make run and make test"). Expected, on that CPU, the same in
every fresh clone measured: Table 1 mean IR 0.45 [0.40, 0.48] (per class 0.3 0.4 0.4 0.5 0.3 0.3
0.6 0.6 0.4 0.7; Method B's set the top 10 of its selection probabilities); stable sets
{pi >= 0.8} per class: Method A 7.8, Method B 1.7, in both 1.2. Same-class manipulation at
alpha 3, clean flips top / bottom / random K: Method A 54% / 22% / 32% (alpha50 0.39 / 1.75 /
0.72), Method B 64% / 16% / 48%. Cross-class target share at distance 9: InterFaceGAN 0.78,
Method A 0.33, GANSpace 0.31, SeFa 0.26, Method B 0.11, random 0.09.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    # Several seeds, e.g. (0, 1, 2): train-classifier and train-gan train one model per seed as
    # one vmapped program (stacked state, one checkpoint) and export writes <destination>/seed<s>.
    # () = one model, from `seed`.
    config.model_seeds = ()
    config.dataset = "fashion_mnist"
    # Where TFDS keeps prepared datasets ('' = TFDS's default, ~/tensorflow_datasets).
    config.tfds_data_dir = ""
    # A folder holding the dataset's canonical files for offline use ('' = $LATENTJAX_DATA_DIR
    # /<dataset folder> when that variable is set, else download through TFDS).
    config.local_data_dir = ""

    # Train on the first N examples of the (TFDS-shuffled) train split; 0 = all of it.
    config.train_examples = 0

    config.latent_dim = 100
    config.image_size = 28
    config.channels = 1
    config.num_classes = 10

    config.generator = ml_collections.ConfigDict(dict(base_width=32))
    config.discriminator = ml_collections.ConfigDict(dict(base_width=64))
    config.classifier = ml_collections.ConfigDict(
        # pixel_mean/pixel_std: the train split's pixel statistics on the [0, 1] scale.
        dict(width=32, hidden=256, dropout=0.3, pixel_mean=0.28604, pixel_std=0.35302, blocks=2)
    )

    config.classifier_training = ml_collections.ConfigDict(
        dict(
            batch_size=128,
            epochs=15,
            learning_rate=2e-3,
            weight_decay=1e-4,
            augment=True,
            # The value shifted-in borders take: the background, black (-1) in Fashion-MNIST.
            augment_fill=-1.0,
            log_every_steps=50,
            checkpoint_every_steps=500,
        )
    )
    config.gan_training = ml_collections.ConfigDict(
        dict(
            batch_size=64,
            epochs=28,
            generator_learning_rate=2e-4,
            discriminator_learning_rate=2e-4,
            beta1=0.5,
            # Exported weights: a moving average of the generator over the last epochs
            # (time constant 1 / (1 - decay) = 1000 steps, about one epoch).
            ema_decay=0.999,
            ema_start_epoch=16,
            log_every_steps=100,
            checkpoint_every_steps=1000,
        )
    )
    config.evaluation = ml_collections.ConfigDict(
        dict(num_samples=10_000, batch_size=500, confidence=0.9)
    )
    config.analysis = get_analysis_config()
    return config


#: Method B as the paper reads it (random batches and xi, exact |.| and max, Adam at a constant
#: learning rate), at make run's sizes, as ``analysis.method_b`` fields, run once per seed
#: (``analysis.stability.pairs = 0``): what configs/sweep.py, sweep_gans.py, sweep_steps.py and
#: sweep_finders.py recorded their numbers with.
SAMPLED_METHOD_B = dict(
    solver="adam", steps=250, batch_size=8, learning_rate=3e-2, xi_nodes=0, smoothing=0.0,
    schedule="constant",
)
#: The converged reading (docs/method.md; latentjax.CONVERGED_READING): the loss over all codes
#: (batch_size=0), u at a Gauss-Legendre node, |dS| and the max over signs rounded, Adam decayed
#: to 0 on a cosine.
CONVERGED_METHOD_B = dict(
    solver="adam", steps=300, batch_size=0, learning_rate=0.1, xi_nodes=1, smoothing=0.01,
    schedule="cosine",
)


def one_run_of_method_b(analysis: ml_collections.ConfigDict, reading: dict) -> None:
    """``analysis`` with Method B's ``reading`` run once per seed (no stability selection)."""
    analysis.method_b.update(reading)
    analysis.stability.pairs = 0


#: Stability selection's defaults, chosen by measurement (docs/results.md, "Stability selection").
#: Measured with benchmarks/stability_convergence.py on the shipped models at S = 48: two
#: independent key sets' top 10 of π agree at Jaccard 0.75 with 16 fits of 30 steps (0.64 at 15
#: steps, 0.63 at 60; 0.65 with 8 fits, no gain with 24), every dimension whose stable-set
#: membership differs between them lies within two standard errors of π_thr, and codes times
#: (1 + 1e-6) move no π by more than its Monte Carlo error. π_thr = 0.8 bounds the false
#: selections per class by 1.67 (0.7: 2.5) with agreement no lower.
WEIGHT_PAIRS = 8
WEIGHT_STEPS = 30
STABILITY_THRESHOLD = 0.8
#: Codes per class: one set of 48, whose halves carry the sampling variability that three
#: analysis seeds of 16 carried when each seed ran Method B once.
SAMPLES_PER_CLASS = 48


def get_analysis_config() -> ml_collections.ConfigDict:
    """The paper reproduction (`latentjax reproduce`), sized for a 2-core CPU; see full.py."""
    return ml_collections.ConfigDict(
        dict(
            # Shipped name or exported folder of the models to analyse.
            pretrained="fashion_mnist",
            # True: train the classifier and GAN this config describes inside the run
            # directory (models/), export them there and analyse those instead.
            train_models=False,
            # Independent repetitions (latent sets and both methods), each its own draw of codes.
            # One seed: the complementary halves of its 48 codes carry the sampling variability
            # (stability selection, above), at the APCR cost of three seeds of 16.
            seeds=(0,),
            # Latent sets Z_j: prior samples with confidence >= threshold (LatentSettings).
            # Method B's learning rate 0.03 and batch 8 were chosen by single-run sweeps at
            # S = 16 (configs/sweep.py; the record is in git history): 250 steps at lr 0.03
            # reached the IR of 500 and 1,000 steps at lr 0.01, which 250 steps at lr 0.01 did not.
            latents=ml_collections.ConfigDict(dict(
                samples_per_class=SAMPLES_PER_CLASS, threshold=0.9, batch_size=1024, max_draws=400_000,
            )),
            # Method A (APCRSettings; chunk_size 0 = the backend's default).
            apcr=ml_collections.ConfigDict(dict(delta=0.5, m=6, relative=True, signed=False, eps=1e-6, chunk_size=0)),
            # Sets and Table 1.
            k=10,
            control_threshold=-1.0,  # < 0: top-K by |w*|; else an absolute threshold
            # Method B (MethodBSettings; docs/method.md, "Method B"): the paper's sampled
            # reading, Adam at learning rate 0.03 on batches of 8 (chosen by the sweeps).
            method_b=ml_collections.ConfigDict(dict(
                solver="adam", steps=WEIGHT_STEPS, batch_size=8, learning_rate=3e-2, schedule="constant",
                xi_nodes=0, smoothing=0.0,
                penalty="l2",  # the paper's plain norm; or "l2_squared", "l1"
                lam=0.2, xi_range=(1.0, 3.0), init=0.5, parametrization="box",
            )),
            # Method B as stability selection (StabilitySettings): `pairs` complementary pairs of
            # half-sample fits per class; a dimension is stable when at least `threshold` of the
            # fits put it in their top `q` (0 = k; fixed at 10, the paper's K, so that a sweep over
            # k shares one set of fits). One run's sets move with its key and with floating-point
            # rounding (docs/results.md, "Method B: one answer?"); pairs = 0 gives that single-run
            # reading.
            stability=ml_collections.ConfigDict(dict(pairs=WEIGHT_PAIRS, q=10, threshold=STABILITY_THRESHOLD)),
            # Manipulation (Figures 5 and 6; ManipulationSettings): `samples` codes per class moved
            # by num_alphas strengths from -alpha_max to alpha_max; the dose-response moves the
            # same codes of every analysis seed by dose_points strengths from 0 to alpha_max.
            manipulation=ml_collections.ConfigDict(dict(alpha_max=3.0, num_alphas=7, samples=8, dose_points=13)),
            # Cross-class targets, one per source class: look-alike classes (T-shirt -> Shirt,
            # Trouser -> Dress, Pullover -> Coat, Dress -> T-shirt, Coat -> Pullover,
            # Sandal -> Sneaker, Shirt -> T-shirt, Sneaker -> Ankle boot, Bag -> Pullover,
            # Ankle boot -> Sneaker).
            cross_targets=(6, 3, 4, 0, 2, 7, 0, 9, 2, 7),
            # Direction finders side by side (latentjax.analysis.finders; () skips the stage):
            # each finder's per-class direction, found on the latent sets Z_j, moves held-out
            # confident codes (finder_samples_per_class per class, a new draw) by equal L2
            # distances; Methods A and B reuse their stages' results. A K-set at alpha per
            # dimension moves alpha * sqrt(K): alpha = 3, K = 10 is about 9.5.
            finders=("apcr", "weights", "sefa", "ganspace", "interfacegan", "random", "random_dense"),
            finder_distances=(1.5, 3.0, 4.5, 6.0, 7.5, 9.0),
            finder_table_distances=(4.5, 9.0),  # the report table's two columns per measure
            finder_samples_per_class=8,
            # SeFa and GANSpace: candidate directions, and the distance at which each class
            # picks the candidate (and sign) that lowers Q_j most on Z_j.
            finder_components=10,
            finder_choice_distance=4.5,
            # GANSpace's PCA and InterFaceGAN's SVM: prior codes.
            finder_prior_samples=4096,
            # Latent structure (Figure 1): inverted real test images.
            inversion_per_class=15,
            inversion_steps=150,
            inversion_beta=0.1,
            inversion_learning_rate=0.05,
            tsne_perplexity=20.0,
            knn_k=5,
        )
    )
