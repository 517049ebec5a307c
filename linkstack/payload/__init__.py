"""The AI payload: prompt and result messages, their transport in Space Packets, the model
backends, the onboard endpoint and the ground client.

The public names of the submodules, importable from the package:
``from linkstack.payload import Prompt, RecordedBackend``.
"""

from linkstack.payload.backend import (
    FlightProfile,
    Generation,
    LlamaCppBackend,
    ModelBackend,
    RecordedBackend,
    get_profile,
    scaled_inference_s,
)
from linkstack.payload.client import (
    PromptClient,
    RequestTimedOut,
    ResultReceived,
)
from linkstack.payload.endpoint import (
    EndpointConfig,
    ModelEndpoint,
    ResultSent,
)
from linkstack.payload.messages import (
    FinishReason,
    GenerationParams,
    MessageType,
    Prompt,
    Result,
    Status,
    decode_message,
)
from linkstack.payload.transport import (
    PROMPT_APID,
    RESULT_APID,
    MessageReceiver,
    MessageSender,
    TransportConfig,
)

__all__ = [
    "PROMPT_APID",
    "RESULT_APID",
    "EndpointConfig",
    "FinishReason",
    "FlightProfile",
    "Generation",
    "GenerationParams",
    "LlamaCppBackend",
    "MessageReceiver",
    "MessageSender",
    "MessageType",
    "ModelBackend",
    "ModelEndpoint",
    "Prompt",
    "PromptClient",
    "RecordedBackend",
    "RequestTimedOut",
    "Result",
    "ResultReceived",
    "ResultSent",
    "Status",
    "TransportConfig",
    "decode_message",
    "get_profile",
    "scaled_inference_s",
]
