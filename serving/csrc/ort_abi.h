/* The project's own minimal declarations of onnxruntime's C ABI: only what wavenet_op.c uses.
 *
 * onnxruntime's pip wheel ships no headers, so these are written from its public C API
 * (onnxruntime_c_api.h): the OrtApiBase entry point, the OrtCustomOp table a custom operator
 * fills in, and the positions of the OrtApi functions used. OrtApi is a struct of function
 * pointers that only ever grows at the end (the header's rule: new entries are appended),
 * so a position, once published, holds in every later runtime; GetApi(version) returns
 * NULL from a runtime older than the version asked for. tests/test_native.py checks these
 * declarations against the installed runtime (its version string, and every entry in use).
 */
#ifndef WAVENET_ORT_ABI_H
#define WAVENET_ORT_ABI_H

#include <stddef.h>
#include <stdint.h>

/* The API version asked of GetApi: 16 added KernelComputeV2 (errors as OrtStatus). */
#define WN_ORT_API_VERSION 16

typedef struct OrtStatus OrtStatus; /* opaque runtime types */
typedef struct OrtApi OrtApi;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtShapeInferContext OrtShapeInferContext;

typedef enum {
    WN_ORT_FLOAT = 1,
    WN_ORT_INT64 = 7,
    WN_ORT_DOUBLE = 11,
} WnOrtElementType; /* ONNXTensorElementDataType values used here */

typedef enum { WN_ORT_OK = 0, WN_ORT_FAIL = 1, WN_ORT_INVALID_ARGUMENT = 2 } WnOrtErrorCode;
/* OrtCustomOpInputOutputCharacteristic (INPUT_OUTPUT_REQUIRED, INPUT_OUTPUT_OPTIONAL): an optional
 * input, read from op version 8 on, may be left out of a node (trailing) or named "" in it. */
typedef enum { WN_ORT_REQUIRED = 0, WN_ORT_OPTIONAL = 1 } WnOrtCharacteristic;
typedef enum { WN_ORT_MEM_DEFAULT = 0 } WnOrtMemType;     /* OrtMemType */

typedef struct OrtApiBase {
    const OrtApi *(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
} OrtApiBase;

/* OrtCustomOp, through the fields of version 17 (the ones after 16 are left NULL). A runtime
 * reads a field only from the op version that introduced it: the characteristics always,
 * GetInputMemoryType from 13 (unchecked: it must be set), CreateKernelV2/KernelComputeV2
 * from 16 (errors come back as an OrtStatus). */
typedef struct OrtCustomOp OrtCustomOp;
struct OrtCustomOp {
    uint32_t version;
    void *(*CreateKernel)(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info);
    const char *(*GetName)(const OrtCustomOp *op);
    const char *(*GetExecutionProviderType)(const OrtCustomOp *op);
    int (*GetInputType)(const OrtCustomOp *op, size_t index);
    size_t (*GetInputTypeCount)(const OrtCustomOp *op);
    int (*GetOutputType)(const OrtCustomOp *op, size_t index);
    size_t (*GetOutputTypeCount)(const OrtCustomOp *op);
    void (*KernelCompute)(void *kernel, OrtKernelContext *context);
    void (*KernelDestroy)(void *kernel);
    int (*GetInputCharacteristic)(const OrtCustomOp *op, size_t index);   /* version >= 8 */
    int (*GetOutputCharacteristic)(const OrtCustomOp *op, size_t index);
    int (*GetInputMemoryType)(const OrtCustomOp *op, size_t index);       /* version >= 13 */
    int (*GetVariadicInputMinArity)(const OrtCustomOp *op);               /* version >= 14 */
    int (*GetVariadicInputHomogeneity)(const OrtCustomOp *op);
    int (*GetVariadicOutputMinArity)(const OrtCustomOp *op);
    int (*GetVariadicOutputHomogeneity)(const OrtCustomOp *op);
    OrtStatus *(*CreateKernelV2)(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info,
                                 void **kernel);                          /* version >= 16 */
    OrtStatus *(*KernelComputeV2)(void *kernel, OrtKernelContext *context);
    OrtStatus *(*InferOutputShapeFn)(const OrtCustomOp *op, OrtShapeInferContext *context); /* >= 17 */
    int (*GetStartVersion)(const OrtCustomOp *op);
    int (*GetEndVersion)(const OrtCustomOp *op);
};

/* Positions in the OrtApi table (counted from its first entry, CreateStatus), read off the
 * public header's declaration order and checked against the offsetof static_asserts that
 * onnxruntime_c_api.cc keeps for each API version (e.g. ReleaseCustomOpDomain = 101). */
enum {
    WN_ORT_CreateStatus = 0,
    WN_ORT_CreateCustomOpDomain = 26,
    WN_ORT_CustomOpDomain_Add = 27,
    WN_ORT_AddCustomOpDomain = 28,
    WN_ORT_GetTensorMutableData = 51,
    WN_ORT_GetTensorElementType = 60,
    WN_ORT_GetDimensionsCount = 61,
    WN_ORT_GetDimensions = 62,
    WN_ORT_GetTensorTypeAndShape = 65,
    WN_ORT_KernelContext_GetInputCount = 88,
    WN_ORT_KernelContext_GetOutputCount = 89,
    WN_ORT_KernelContext_GetInput = 90,
    WN_ORT_KernelContext_GetOutput = 91,
    WN_ORT_ReleaseTensorTypeAndShapeInfo = 99,
};

/* The signatures of those entries. */
typedef OrtStatus *(*WnCreateStatus)(int code, const char *message);
typedef OrtStatus *(*WnCreateCustomOpDomain)(const char *domain, OrtCustomOpDomain **out);
typedef OrtStatus *(*WnCustomOpDomainAdd)(OrtCustomOpDomain *domain, const OrtCustomOp *op);
typedef OrtStatus *(*WnAddCustomOpDomain)(OrtSessionOptions *options, OrtCustomOpDomain *domain);
typedef OrtStatus *(*WnGetTensorMutableData)(OrtValue *value, void **out);
typedef OrtStatus *(*WnGetTensorElementType)(const OrtTensorTypeAndShapeInfo *info, int *out);
typedef OrtStatus *(*WnGetDimensionsCount)(const OrtTensorTypeAndShapeInfo *info, size_t *out);
typedef OrtStatus *(*WnGetDimensions)(const OrtTensorTypeAndShapeInfo *info, int64_t *values, size_t count);
typedef OrtStatus *(*WnGetTensorTypeAndShape)(const OrtValue *value, OrtTensorTypeAndShapeInfo **out);
typedef OrtStatus *(*WnKernelContextGetCount)(const OrtKernelContext *context, size_t *out);
typedef OrtStatus *(*WnKernelContextGetInput)(const OrtKernelContext *context, size_t index, const OrtValue **out);
typedef OrtStatus *(*WnKernelContextGetOutput)(OrtKernelContext *context, size_t index, const int64_t *dims,
                                               size_t count, OrtValue **out);
typedef void (*WnReleaseTensorTypeAndShapeInfo)(OrtTensorTypeAndShapeInfo *info);

/* The entry at `index` of `api`, as a function of type `type`. */
#define WN_ORT(api, type, index) ((type)(((void *const *)(api))[index]))

#endif
