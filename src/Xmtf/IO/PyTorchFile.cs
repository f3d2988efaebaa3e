namespace Xmtf.IO;

/// <summary>PLACEHOLDER until the pickle reader lands.</summary>
public sealed class PyTorchFile : ITensorFile
{
    public PyTorchFile(string path) => throw new XmtfException($"{path}: .bin checkpoints are not supported yet");
    public IReadOnlyDictionary<string, TensorInfo> Tensors => throw new NotSupportedException();
    public ReadOnlySpan<byte> GetBytes(string name) => throw new NotSupportedException();
    public void Dispose() { }
}
