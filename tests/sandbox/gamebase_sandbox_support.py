"""Shared pieces of the Gamebase emulator tests: a served sim, a plain httpx client, the document's samples."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from gs_hooks import FakeClock
from gs_hooks.http import Router, serve_http
from gs_hooks.sandbox._gamebase import GamebaseSim

APP = "C3JmSctU"
KEY = "IgsaAP"


@dataclass
class Env:
    sim: GamebaseSim
    clock: FakeClock
    http: httpx.AsyncClient

    async def call(
        self, method: str, path: str, *, json_body: Any = None, params: Any = None, headers: Any = None
    ) -> dict[str, Any]:
        """One API call; asserts the transport contract (HTTP 200, JSON, transaction id in header == body)."""
        r = await self.http.request(method, path, json=json_body, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert r.headers["X-TCGB-Transaction-Id"] == body["header"]["transactionId"]
        return body


@asynccontextmanager
async def serve_gamebase(**kwargs: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    sim = GamebaseSim(app_id=APP, secret_key=KEY, clock=clock, **kwargs)
    router = Router()
    for _, method, path, handler in sim.routes() + sim.admin_routes():
        router.add(method, path, handler)
    async with (
        serve_http(router, port=0) as server,
        httpx.AsyncClient(base_url=server.url, headers={"X-Secret-Key": KEY}) as client,
    ):
        yield Env(sim, clock, client)


def api(service: str, rest: str, version: str = "v1.0", app: str = APP) -> str:
    return f"/{service}/{version}/apps/{app}{rest}"


def code(body: dict[str, Any]) -> int:
    header = body["header"]
    assert header["isSuccessful"] is (header["resultCode"] == 0)
    result: int = header["resultCode"]
    return result


def shape(value: Any) -> Any:
    """The key structure of a JSON value; leaves become their JSON kind (None for null: matches anything).

    A dict whose only key is the placeholder "String" stands for a map with arbitrary keys (the document's way of
    showing ``{userId: ...}`` maps): its value shape is compared against each entry.
    """
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def assert_same_shape(got: Any, sample: Any, where: str = "$") -> None:
    """Recursively: same key sets, same leaf kinds (null matches anything), list items like the sample's."""
    if isinstance(sample, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        if list(sample) == ["String"]:
            assert got, f"{where}: expected a non-empty map"
            for k, v in got.items():
                assert_same_shape(v, sample["String"], f"{where}[{k!r}]")
            return
        assert set(got) == set(sample), f"{where}: keys {sorted(got)} != sample {sorted(sample)}"
        for k in sample:
            assert_same_shape(got[k], sample[k], f"{where}.{k}")
    elif isinstance(sample, list):
        assert isinstance(got, list), f"{where}: expected an array"
        assert got, f"{where}: expected a non-empty array to compare with the sample"
        for i, item in enumerate(got):
            assert_same_shape(item, sample[0], f"{where}[{i}]")
    elif sample is not None and got is not None:
        assert shape(got) == shape(sample), f"{where}: {got!r} is not of the sample's kind ({sample!r})"


# --- the document's samples, copied verbatim from gamebase-server-api.txt ---------------------------------------

SAMPLE_COMMON = json.loads("""
{
    "header" : {
        "transactionId": "88a1ae42-6b1d-48c8-894e-54e97aca07fq",
        "isSuccessful" : true,
        "resultCode": 0,
        "resultMessage" : "Success."
    }
}
""")

SAMPLE_TOKEN = json.loads("""
{
  "header": {
    "transactionId": "String",
    "resultCode": 0,
    "resultMessage": "String",
    "isSuccessful": true
  },
  "linkedIdP": {
    "idPCode": "String",
    "idPId": "String"
  },
  "member": {
    "userId": "String",
    "valid": "Y",
    "appId": "String",
    "regDate": 1488257745000,
    "lastLoginDate": 1488286059000,
    "authList": [
      {
        "userId": "String",
        "authSystem": "String",
        "idPCode": "String",
        "authKey": "String",
        "regDate": 1488257745000
      },
      {
        "userId": "String",
        "authSystem": "String",
        "idPCode": "String",
        "authKey": "String",
        "regDate": 1490922916000
      }
    ]
  }
}
""")

SAMPLE_LAUNCHING_OK = json.loads("""
{
    "header": {
        "resultCode": 0,
        "resultMessage": "String",
        "isSuccessful": true
    },
    "launchingData": {
        "status": {
            "code": 200,
            "message": "String"
        },
        "app": {
            "storeCode": "String",
            "accessInfo": {
                "serverAddress": "String",
                "csInfo": "String"
            },
            "relatedUrls": {
                "termsUrl": "String",
                "csUrl": "String",
                "punishRuleUrl": "String",
                "personalInfoCollectionUrl": "String"
            },
            "install": {
                "url": "String"
            }
        }
    }
}
""")

SAMPLE_LAUNCHING_MAINTENANCE = json.loads("""
{
    "header": {
        "resultCode": 0,
        "resultMessage": "String",
        "isSuccessful": true
    },
    "launchingData": {
        "status": {
            "code": 303,
            "message": "String"
        },
        "app": {
            "storeCode": "String",
            "accessInfo": {
                "serverAddress": "String",
                "csInfo": "String"
            },
            "relatedUrls": {
                "termsUrl": "String",
                "csUrl": "String",
                "punishRuleUrl": "String",
                "personalInfoCollectionUrl": "String"
            },
            "install": {
                "url": "String"
            }
        },
        "maintenance": {
            "typeCode": "String",
            "beginDate": "2018-05-23T10:44:00+09:00",
            "endDate": "2022-01-01T10:44:00+09:00",
            "url": null,
            "reason": "String",
            "message": "String"
        }
    }
}
""")

SAMPLE_MEMBER = json.loads("""
{
  "header": {
    "transactionId": "String",
    "resultCode": 0,
    "resultMessage": "SUCCESS",
    "isSuccessful": true
  },
  "member": {
    "userId": "String",
    "valid": "Y",
    "appId": "String",
    "regDate": 1488185201000,
    "lastLoginDate": 1488185201000,
    "authList": [
          {
            "userId": "String",
            "authSystem": "String",
            "idPCode": "String",
            "authKey": "String",
            "regDate": 1488185201000
          }
        ]
      },
  "memberInfo": {
    "deviceCountryCode": "String",
    "usimCountryCode": "String",
    "language": "String",
    "osCode": "String",
    "telecom": "String",
    "storeCode": "String",
    "network": "String",
    "deviceModel": "String",
    "osVersion": "String",
    "sdkVersion": "String",
    "clientVersion": "String"
  }
}
""")

SAMPLE_MEMBERS = json.loads("""
{
  "header": {
    "transactionId": "String",
    "resultCode": 0,
    "resultMessage": "SUCCESS",
    "isSuccessful": true
  },
  "memberList": [
    {
        "userId": "String",
        "valid": "Y",
        "appId": "String",
        "regDate": 1488185201000
    }
  ]
}
""")

SAMPLE_IDP = json.loads("""
{
  "header": {
    "transactionId": "String",
    "resultCode": 0,
    "resultMessage": "SUCCESS",
    "isSuccessful": true
  },
  "result": {
    "String": [
      {
        "authKey": "String",
        "idPCode": "gbid",
        "authSystem": "String"
      }
    ]
  }
}
""")

SAMPLE_USERIDS = json.loads("""
{
  "header": {
    "transactionId": "String",
    "resultCode": 0,
    "resultMessage": "SUCCESS",
    "isSuccessful": true
  },
  "result": {
    "String": "String"
  }
}
""")

# The ban history and the ban release history samples are identical in the document.
SAMPLE_BANS = json.loads("""
{
  "header": {
    "transactionId": "String",
    "resultCode": 0,
    "resultMessage": "SUCCESS",
    "isSuccessful": true
  },
    "pagingInfo": {
      "first": true,
      "last": true,
      "numberOfElements": 0,
      "page": 0,
      "size": 0,
      "totalElements": 0,
      "totalPages": 0
    },
    "result": [
      {
        "appId": "String",
        "banCaller": "CONSOLE",
        "banReason": "String",
        "banType": "TEMPORARY",
        "beginDate": 0,
        "endDate": 0,
        "flags": "String",
        "message": "String",
        "name": "String",
        "regUser": "String",
        "releaseCaller": "CONSOLE",
        "releaseDate": 0,
        "releaseReason": "String",
        "releaseUser": "String",
        "seq": 0,
        "templateCode": 0,
        "userId": "String"
      }
    ]
}
""")

SAMPLE_UNDER_MAINTENANCE = json.loads("""
{
  "header": {
    "transactionId": "String",
    "resultCode": 0,
    "resultMessage": "String",
    "isSuccessful": true
  },
  "appId": "",
  "underMaintenance": true,
  "maintenances": [
    {
      "typeCode": "APP",
      "beginDate": "2017-01-01T12:10:00+07:00",
      "endDate": "2017-02-01T12:17:00+07:00",
      "url": "http://url.info",
      "message": "maintenance reason"
    }
  ]
}
""")

SAMPLE_FAILURE = json.loads("""
{
  "header": {
    "transactionId": "18a1ae42-6b1d-54c8-894e-54e97bca07fq",
    "resultCode": -4010002,
    "resultMessage": "Gamebase product appKey is invalid, appId:C3JmSctU",
    "traceError": {
      "trackingTime": 1489726350287,
      "throwPoint": "gateway",
      "uri": "/tcgb-launching/v1.0/apps/C3JmSctU/maintenances/under-maintenance"
    },
    "isSuccessful": false
  }
}
""")
