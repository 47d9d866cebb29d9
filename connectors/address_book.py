"""The shipping service's address book built from the connectors' configuration.

One address reader per channel instance whose kind can tell a shipping address (Shopify,
WooCommerce, Mirakl operators, Fnac Darty, Amazon, Cdiscount, eMAG), with the instance's base URL,
credentials and limits, on the caller's HTTP session; other kinds have none (see
:mod:`connectors.carriers.destinations`).
"""

from __future__ import annotations

import aiohttp

from connectors.amazon.addresses import build_amazon_addresses
from connectors.amazon.mapping import AmazonMapping
from connectors.carriers.destinations import AddressReader, ChannelAddresses
from connectors.cdiscount.addresses import CdiscountAddresses
from connectors.cdiscount.client import CdiscountClient, TokenSource
from connectors.cdiscount.limits import CdiscountLimits
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.config import ChannelInstance, ConnectorsConfig
from connectors.emag.addresses import EmagAddresses
from connectors.emag.client import EmagClient
from connectors.emag.limits import EmagLimits
from connectors.emag.mapping import EmagMapping
from connectors.fnac.addresses import FnacAddresses
from connectors.fnac.client import FnacClient
from connectors.fnac.limits import FnacLimits
from connectors.mirakl.addresses import MiraklAddresses
from connectors.mirakl.client import MiraklClient
from connectors.mirakl.limits import MiraklLimits
from connectors.mirakl.mapping import MiraklMapping
from connectors.shopify.addresses import ShopifyAddresses
from connectors.shopify.client import ShopifyClient
from connectors.shopify.limits import ShopifyLimits
from connectors.woocommerce.addresses import WooAddresses
from connectors.woocommerce.client import WooClient
from connectors.woocommerce.limits import WooLimits


def address_reader(session: aiohttp.ClientSession, inst: ChannelInstance) -> AddressReader | None:
    if inst.kind == "shopify":
        return ShopifyAddresses(
            ShopifyClient(
                session,
                inst.base_url,
                inst.secret("token"),
                api_version=inst.api_version,
                limits=ShopifyLimits(inst.name, **dict(inst.limits)),
            )
        )
    if inst.kind == "woocommerce":
        return WooAddresses(
            WooClient(
                session,
                inst.base_url,
                inst.secret("consumer_key"),
                inst.secret("consumer_secret"),
                limits=WooLimits(inst.name, **dict(inst.limits)),
            )
        )
    if inst.kind == "mirakl" and isinstance(inst.mapping, MiraklMapping):
        return MiraklAddresses(
            MiraklClient(
                session,
                inst.base_url,
                inst.secret("api_key"),
                shop_id=inst.mapping.shop_id,
                limits=MiraklLimits(inst.name, **dict(inst.limits)),
            )
        )
    if inst.kind == "fnac":
        return FnacAddresses(
            FnacClient(
                session,
                inst.base_url,
                inst.secret("partner_id"),
                inst.secret("shop_id"),
                inst.secret("key"),
                limits=FnacLimits(inst.name, **dict(inst.limits)),
            )
        )
    if isinstance(inst.mapping, AmazonMapping):
        return build_amazon_addresses(
            session,
            inst.mapping,
            base_url=inst.base_url,
            client_id=inst.secret("client_id"),
            client_secret=inst.secret("client_secret"),
            refresh_token=inst.secret("refresh_token"),
            limits=inst.limits,
        )
    if isinstance(inst.mapping, CdiscountMapping):
        m = inst.mapping
        return CdiscountAddresses(
            CdiscountClient(
                session,
                inst.base_url,
                TokenSource(
                    session, m.auth_url, inst.secret("client_id"), inst.secret("client_secret")
                ),
                m.seller_id,
                limits=CdiscountLimits(m.channel, **dict(inst.limits)),
            )
        )
    if isinstance(inst.mapping, EmagMapping):
        return EmagAddresses(
            EmagClient(
                session,
                inst.base_url,
                inst.secret("username"),
                inst.secret("password"),
                channel=inst.mapping.channel,
                limits=EmagLimits(inst.mapping.channel, **dict(inst.limits)),
            )
        )
    return None


def build_address_book(
    session: aiohttp.ClientSession, config: ConnectorsConfig
) -> ChannelAddresses:
    readers = {}
    for inst in config.channels:
        reader = address_reader(session, inst)
        if reader is not None:
            readers[inst.name] = reader
    return ChannelAddresses(readers)
