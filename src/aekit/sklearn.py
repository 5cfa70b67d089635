"""aekit's scikit-learn estimators, under the name scikit-learn users look for.

>>> from aekit.sklearn import AnomalyDetector, AutoencoderTransformer, CodeClusterer

- :class:`AutoencoderTransformer`: an autoencoder as a transformer (codes, decoding,
  reconstruction error); see :mod:`aekit.integrations.sklearn`;
- :class:`AnomalyDetector`: PyOD's detector API over it; see :mod:`aekit.integrations.anomaly`;
- :class:`CodeClusterer`: a clusterer (``fit_predict``) on its codes; see :mod:`aekit.integrations.sklearn`.
"""

from aekit.integrations.anomaly import AnomalyDetector
from aekit.integrations.sklearn import AutoencoderTransformer, CodeClusterer

__all__ = ["AnomalyDetector", "AutoencoderTransformer", "CodeClusterer"]
