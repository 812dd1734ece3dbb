/// The HTTP header names x402 uses. HTTP compares header names case-insensitively; these are the
/// spellings the x402 transport specs use when sending.
public enum X402Header {
    /// v2, on a 402: base64 of the v2 `PaymentRequired` JSON.
    public static let paymentRequired = "PAYMENT-REQUIRED"
    /// v2, on the client's retry: base64 of the v2 `PaymentPayload` JSON.
    public static let paymentSignature = "PAYMENT-SIGNATURE"
    /// v2, on the paid response (or a 402 after a failed settlement): base64 of the settlement result.
    public static let paymentResponse = "PAYMENT-RESPONSE"
    /// v1, on the client's retry: base64 of the v1 `PaymentPayload` JSON.
    public static let xPayment = "X-PAYMENT"
    /// v1, on the paid response: base64 of the settlement result.
    public static let xPaymentResponse = "X-PAYMENT-RESPONSE"
}
