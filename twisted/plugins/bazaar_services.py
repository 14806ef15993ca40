"""twistd dropin: `twistd bazaar-catalog`, `twistd bazaar-order --id N`, `twistd bazaar-frontend`.

Only names live here; each tap module is imported when its plugin is used.
"""

from twisted.application.service import ServiceMaker

bazaarCatalog = ServiceMaker(
    "Bazaar catalog", "bazaar.plugins.catalog", "The Bazaar stock table (gRPC).", "bazaar-catalog"
)
bazaarOrder = ServiceMaker(
    "Bazaar order replica", "bazaar.plugins.order", "One Bazaar order replica (gRPC).", "bazaar-order"
)
bazaarFrontend = ServiceMaker(
    "Bazaar front end", "bazaar.plugins.frontend", "The Bazaar public HTTP API (Klein).", "bazaar-frontend"
)
