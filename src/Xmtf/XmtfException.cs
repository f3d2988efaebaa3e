namespace Xmtf;

/// <summary>
/// An error caused by the user's input (a file, a request, an option), with a message meant to be shown
/// as is. Anything else that escapes is a bug.
/// </summary>
public class XmtfException(string message, Exception? inner = null) : Exception(message, inner);
