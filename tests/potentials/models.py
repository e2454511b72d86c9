"""Model factories shared by the potential tests: every architecture and activation, depth 1 included."""

from gradflow.potentials import ICNN, GradNetC, GradNetM, MGradNetC, MGradNetM, MLPField, MLPPotential

GRADIENT_NETS = {
    "gradnet_c_tanh_d1": lambda d, m: GradNetC(d, width=m, depth=1),
    "gradnet_c_sin_d3": lambda d, m: GradNetC(d, width=m, depth=3, activation="sin"),
    "gradnet_c_wtanh_d2": lambda d, m: GradNetC(d, width=m, depth=2, activation="weighted_tanh"),
    "gradnet_m_softmax": lambda d, m: GradNetM(d, width=m, n_modules=3),
    "gradnet_m_wsoftmax": lambda d, m: GradNetM(d, width=m, n_modules=2, activation="weighted_softmax"),
    "gradnet_m_tanh": lambda d, m: GradNetM(d, width=m, n_modules=1, activation="tanh"),
}
MONOTONE_NETS = {
    "mgradnet_c_tanh_d1": lambda d, m: MGradNetC(d, width=m, depth=1),
    "mgradnet_c_sigmoid_d3": lambda d, m: MGradNetC(d, width=m, depth=3, activation="sigmoid"),
    "mgradnet_c_wtanh_d2": lambda d, m: MGradNetC(
        d, width=m, depth=2, activation="weighted_tanh", strong_convexity=0.2
    ),
    "mgradnet_m_softmax": lambda d, m: MGradNetM(d, width=m, n_modules=3, strong_convexity=0.1),
    "mgradnet_m_wsoftmax": lambda d, m: MGradNetM(d, width=m, n_modules=2, activation="weighted_softmax"),
    "mgradnet_m_wtanh": lambda d, m: MGradNetM(d, width=m, n_modules=1, activation="weighted_tanh"),
    "icnn": lambda d, m: ICNN(d, widths=(m, m), strong_convexity=0.1),
}
AUTOGRAD_POTENTIALS = {
    "mlp_potential": lambda d, m: MLPPotential(d, widths=(m, m)),
}
POTENTIALS = {**GRADIENT_NETS, **MONOTONE_NETS, **AUTOGRAD_POTENTIALS}
FIELDS = {**POTENTIALS, "mlp_field": lambda d, m: MLPField(d, widths=(m,))}
